# Shared shell helpers for make test, make demo and make bench.
#
# Everything runs on loopback ports chosen at random, in a work folder that
# the unprivileged "postgres" user can reach (PostgreSQL refuses to run as
# root).  Source this file; it defines functions only.

RS_PG_VERSION=15
# RS_PREFIX: a private copy of the PostgreSQL installation to install into
# and run from (rs_make_prefix), so that several checkouts can test at once
# without replacing each other's redis_sync in the system's PostgreSQL.
RS_PREFIX=${RS_PREFIX:-}
# RS_PG_TREE: instead of Debian's packages, a PostgreSQL installed under one
# prefix (test/matrix.sh builds them); it is copied to RS_PREFIX, and
# PG_CONFIG points to the copy.
RS_PG_TREE=${RS_PG_TREE:-}
if [ -n "$RS_PG_TREE" ]; then
    RS_PGBIN=$RS_PREFIX/bin
    export PG_CONFIG=$RS_PGBIN/pg_config
else
    RS_PGBIN=$RS_PREFIX/usr/lib/postgresql/$RS_PG_VERSION/bin
fi
RS_PG_CONFIG=${PG_CONFIG:-pg_config}
RS_PACKAGES="postgresql-$RS_PG_VERSION postgresql-server-dev-$RS_PG_VERSION libhiredis-dev redis-server redis-tools libipc-run-perl postgresql-$RS_PG_VERSION-cron make gcc"

# rs_install_packages [extra packages...]: install what is missing (as root).
rs_install_packages() {
    local missing=""
    for p in $RS_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "missing Debian packages:$missing (run as root to install them)" >&2
            return 1
        fi
        echo "installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null || return 1
    fi
    # The Debian package starts a cluster and a Redis of its own; we use ours.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop redis-server >/dev/null 2>&1 || true
    fi
    return 0
}

# rs_build_install: build (warnings are errors in our own runs) and install.
rs_build_install() {
    [ -z "$RS_PREFIX" ] || [ -x "$RS_PGBIN/postgres" ] || rs_make_prefix "$RS_PREFIX" || return 1
    if [ -n "$RS_PG_TREE" ]; then
        make -s with_llvm=no RS_WERROR=1 >/dev/null && make -s with_llvm=no install >/dev/null
    else
        make -s with_llvm=no RS_WERROR=1 >/dev/null && make -s with_llvm=no install DESTDIR="$RS_PREFIX" >/dev/null
    fi
}

# rs_make_prefix DIR: copy the installed PostgreSQL (binaries, libraries and
# share files) under DIR; its binaries find their files relative to
# themselves, so a server started from DIR loads extensions from DIR.
rs_make_prefix() {
    local dir=$1
    if [ -n "$RS_PG_TREE" ]; then
        mkdir -p "$dir" && cp -a "$RS_PG_TREE/." "$dir/" && chmod -R a+rX "$dir"
        return
    fi
    mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql" &&
    cp -a "/usr/lib/postgresql/$RS_PG_VERSION" "$dir/usr/lib/postgresql/" &&
    cp -a "/usr/share/postgresql/$RS_PG_VERSION" "$dir/usr/share/postgresql/" &&
    chmod -R a+rX "$dir"
}

# rs_free_port: print a TCP port on 127.0.0.1 that nobody listens on.
rs_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
      || perl -MIO::Socket::INET -e 'my $s=IO::Socket::INET->new(Listen=>1,LocalAddr=>"127.0.0.1",LocalPort=>0) or die; print $s->sockport, "\n"'
}

# rs_workdir NAME: make a fresh folder the postgres user owns; print it.
rs_workdir() {
    local d
    d=$(mktemp -d "/tmp/redis_sync_$1.XXXXXX")
    chmod 755 "$d"
    chown postgres:postgres "$d"
    echo "$d"
}

# rs_as_postgres CMD...: run a command as the postgres user (or as is, if we are not root).
rs_as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# rs_start_redis DIR PORT [extra redis-server args]
rs_start_redis() {
    local dir=$1 port=$2
    shift 2
    rs_as_postgres redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "$@"
    for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "redis-server did not start; see $dir/redis.log" >&2
    return 1
}

rs_stop_redis() {
    local port=$1
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}

# rs_start_pg DIR PORT [extra postgresql.conf lines...]
rs_start_pg() {
    local dir=$1 port=$2
    shift 2
    rs_as_postgres "$RS_PGBIN/initdb" -D "$dir/pgdata" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || rs_as_postgres "$RS_PGBIN/initdb" -D "$dir/pgdata" -A trust -U postgres -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log"; return 1; }
    {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir'"
        echo "max_worker_processes = 32"
        echo "timezone = 'UTC'"
        [ -z "${RS_PG_DURABLE:-}" ] && echo "fsync = off"
        echo "log_line_prefix = '%m [%p] %b '"
        for line in "$@"; do echo "$line"; done
    } | rs_as_postgres tee -a "$dir/pgdata/postgresql.conf" >/dev/null
    rs_as_postgres "$RS_PGBIN/pg_ctl" -D "$dir/pgdata" -l "$dir/postgresql.log" -w start >/dev/null \
      || { cat "$dir/postgresql.log"; return 1; }
}

rs_stop_pg() {
    local dir=$1
    [ -d "$dir/pgdata" ] && rs_as_postgres "$RS_PGBIN/pg_ctl" -D "$dir/pgdata" -m fast -w stop >/dev/null 2>&1 || true
}
