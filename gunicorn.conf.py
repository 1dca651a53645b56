"""gunicorn settings for the web app, as the Procfile and the benchmark run it.

gunicorn reads `./gunicorn.conf.py` by default, so any `gunicorn 'app:create_app()'`
started in the project folder (a systemd unit, a container) gets these settings too.

The access log names the path, never the query string or the referrer: Kannel's
callbacks carry the sender's number in `from=` and, in get-url mode, the whole message
in `text=` (citizens send NIKs), and a staff page's referrer can carry a search. Every
line gunicorn writes, its error log's request URIs included, then loses any query
string and has NIKs masked (bot/rules/logmask.py).
"""
workers = 2
threads = 4
timeout = 30
accesslog = "-"
# Remote address, time, method, path without query, status, bytes, duration in ms.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
logger_class = "bot.rules.logmask.MaskedGunicornLogger"
