"""Stand-ins and helpers shared by the tests, the benchmarks and the chat terminal: a
local fake of Twilio's REST API, a scriptable Rasa, the real Rasa and action servers
as subprocesses, fresh databases, notice campaigns. Not part of the deployed app."""
