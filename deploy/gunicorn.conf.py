"""gunicorn settings for the web app, as the Procfile and the benchmark run it.

The access log names the path, never the query string or the referrer: Kannel's
callbacks carry the sender's number in `from=` and, in get-url mode, the whole message
in `text=` (citizens send NIKs), and a staff page's referrer can carry a search. Every
line gunicorn writes then still passes the NIK-masking filter (bot/logmask.py).
"""
workers = 2
threads = 4
timeout = 30
accesslog = "-"
# Remote address, time, method, path without query, status, bytes, duration in ms.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
logger_class = "bot.logmask.MaskedGunicornLogger"
