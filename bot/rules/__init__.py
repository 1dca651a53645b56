"""Pure rules with no database and no network: NIKs, phone numbers, regions and time
zones, SMS text (GSM-7, segments) and log masking. Every other part calls these; none
of them is written twice."""
