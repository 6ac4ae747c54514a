"""gunicorn settings for production: `make serve`, or `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be set from the environment; docs/deploy.md explains when to change them.
"""

import multiprocessing
import os
import sys

# gunicorn is the production server. Started without APP_ENV=production the app would run
# with development's settings (console mail, lax cookies): refuse, and say what to set.
if os.environ.get("APP_ENV", "").strip().lower() != "production":
    sys.exit(
        "make serve (gunicorn) runs the production server: set APP_ENV=production and the "
        "settings production needs (docs/deploy.md). For development use make run."
    )

# Behind a load balancer or reverse proxy on the same host: listen on loopback only,
# unless told otherwise (e.g. GUNICORN_BIND=0.0.0.0:8000 in a container).
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# The usual 2 × CPUs + 1 workers: requests are short and mostly wait on the database.
workers = int(os.environ.get("GUNICORN_WORKERS", str(multiprocessing.cpu_count() * 2 + 1)))
# Threaded workers: a client that sends its request slowly holds one of a worker's threads,
# not the whole worker (with sync workers, four such clients held both workers of a
# 2-worker site). Eight threads absorb a few; a buffering reverse proxy in front is still
# required, for more (docs/deploy.md).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# A request still running after this is killed (and its transaction rolled back). No
# legitimate request comes near it: imports are checked and written by the job worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Longer than the load balancer's idle timeout would be pointless; this is the usual 5 s.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then so that no slow leak can grow for weeks.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
# Import the app once before forking: a bad configuration (e.g. the default SECRET_KEY in
# production) stops gunicorn at start instead of failing in every worker.
preload_app = True

# Logs to stderr for the service manager; access lines as JSON without query strings.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logger_class = "clinic_finder.serving.AccessLogger"
# gunicorn's control socket (one fixed path per user) is not used here, and would clash
# between two gunicorn instances on one host.
control_socket_disable = True
