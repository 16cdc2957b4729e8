#!/bin/sh
# A small shell "app" installed by the authoring examples: it says hello and,
# with "serve", serves a page on port 80 with busybox httpd.
echo "${GREETING:-Hello} from $(hostname) (pid $$, uid $(id -u))"
ip -4 -o addr show 2>/dev/null | awk '$2 != "lo" {print "  address " $4 " on " $2}'
if [ "$1" = serve ]; then
  mkdir -p /srv/www
  echo "<h1>${GREETING:-Hello} from $(hostname)</h1>" > /srv/www/index.html
  exec httpd -f -p 80 -h /srv/www
fi
