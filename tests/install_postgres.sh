#!/bin/sh
# Install Debian's PostgreSQL server for tests/test_postgres.py when it is missing and we can: as root, with
# apt-get. Anywhere else this does nothing, and the PostgreSQL tests skip, saying why. A failed install is
# reported but does not fail the test run either: the tests skip then too. The tests start their own
# throwaway cluster (tests/pg_server.py): the packaged service need not run.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && exit 0
command -v apt-get >/dev/null 2>&1 || exit 0
[ "$(id -u)" = 0 ] || exit 0
echo "installing postgresql for the PostgreSQL tests (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }; then
    echo "warning: could not install postgresql; the PostgreSQL tests will be skipped" >&2
fi
exit 0
