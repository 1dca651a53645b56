"""A person takes over from the bot: escalation and the desk staff work chats at, the
staff accounts and sessions, the audit log, and the figures a supervisor watches."""
