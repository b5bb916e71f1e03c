#!/bin/sh
# Install Debian's Redis server for tests/test_workqueue.py and tests/test_hostlimit.py when it is missing and
# we can: as root, with apt-get. Anywhere else this does nothing, and the Redis tests skip, saying why. A
# failed install is reported but does not fail the test run either: the tests skip then too. The tests start
# their own throwaway server (tests/redis_server.py): the packaged service need not run.
command -v redis-server >/dev/null 2>&1 && exit 0
[ -x /usr/bin/redis-server ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: redis-server is missing and apt-get is not available; the Redis tests will be skipped" >&2
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "note: redis-server is missing and installing it needs root; the Redis tests will be skipped" >&2
    exit 0
fi
echo "installing redis-server for the Redis tests (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }; then
    echo "warning: could not install redis-server; the Redis tests will be skipped" >&2
fi
exit 0
