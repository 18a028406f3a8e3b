#!/bin/sh
# Fills in nginx.conf from NGINX_WORKERS, NGINX_DELAY_SECONDS and NGINX_LISTEN, then runs nginx in the
# foreground as PID 1.
set -eu
case "$NGINX_DELAY_SECONDS" in
    0 | 0.0 | "") sleep="" ;;
    *) sleep="echo_sleep $NGINX_DELAY_SECONDS;" ;;
esac
sed -e "s/@WORKERS@/$NGINX_WORKERS/" -e "s/@LISTEN@/$NGINX_LISTEN/" -e "s/@SLEEP@/$sleep/" \
    /etc/nginx/bench.conf.template >/tmp/nginx.conf
# The simulator raises its soft file limit to the hard one at start-up; nginx gets the same.
ulimit -n "$(ulimit -Hn)"
exec nginx -c /tmp/nginx.conf -g "daemon off;"
