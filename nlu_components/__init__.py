"""Custom Rasa NLU components for Asisten Bansos (loaded by Rasa from the project root)."""
