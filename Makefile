# redis_sync: PGXS build.
#
#   make && make install    build and install into the PostgreSQL found by pg_config
#   make test               install what is missing, build with -Werror, and run every test
#   make test-full          the same, with the full sizes of the fault and load tests
#   make test-matrix        the tests on PostgreSQL 18 (and 17) with hiredis 1.x and TLS,
#                           built from Debian's source packages and cached (test/matrix.sh)
#
# hiredis is found with pkg-config (hiredis, and hiredis_ssl for TLS), or
# under HIREDIS_PREFIX (an install with include/ and lib/, linked with an
# rpath).  TLS to Redis is compiled in when hiredis_ssl is found; RS_TLS=no
# leaves it out.  "make print-tls" says whether this build has it.
#   make demo / demo-stop   a throwaway PostgreSQL and Redis with demo data
#   make bench              side-by-side benchmarks (see bench/README.md)
#   make bench-live         only the live-key benchmark (bench/results-live.md)
#   make bench-scan         only the foreign table's full scan against the C reader
#   make bench-cluster      a day sharded over a Redis Cluster against one key (bench/results-cluster.md)
#   make bench-versions     a past day by 0.1 and this tree side by side (bench/results-versions.md)

MODULE_big = redis_sync
OBJS = \
	src/redis_sync.o \
	src/redis_conn.o \
	src/redis_cluster.o \
	src/redis_sentinel.o \
	src/redis_tls.o \
	src/options.o \
	src/zset_reader.o \
	src/zset_snapshot.o \
	src/zset_writer.o \
	src/fdw_plan.o \
	src/fdw_scan.o \
	src/fdw_window.o \
	src/fdw_shards.o \
	src/fdw_modify.o \
	src/fdw_import.o \
	src/catalog.o \
	src/jobs.o \
	src/job_owner_hook.o \
	src/sync_run.o \
	src/coordinator.o \
	src/worker_slots.o \
	src/sync_worker.o \
	src/chunk_writer.o \
	src/target_probe.o \
	src/cron.o \
	src/history.o \
	src/scheduler.o

EXTENSION = redis_sync
DATA = redis_sync--0.1.sql redis_sync--0.1--0.2.sql
PGFILEDESC = "redis_sync - Redis sorted sets in PostgreSQL"

PKG_CONFIG ?= pkg-config
ifdef HIREDIS_PREFIX
HIREDIS_CFLAGS = -I$(HIREDIS_PREFIX)/include
# PG_LDFLAGS goes before PostgreSQL's own -L options, so this hiredis wins.
PG_LDFLAGS = -L$(HIREDIS_PREFIX)/lib -Wl,-rpath,$(HIREDIS_PREFIX)/lib
HIREDIS_LIBS = -lhiredis
HIREDIS_SSL := $(if $(wildcard $(HIREDIS_PREFIX)/lib/libhiredis_ssl.*),yes,no)
HIREDIS_SSL_LIBS = -lhiredis_ssl -lssl -lcrypto
else
HIREDIS_CFLAGS := $(shell $(PKG_CONFIG) --cflags hiredis 2>/dev/null)
HIREDIS_LIBS := $(or $(shell $(PKG_CONFIG) --libs hiredis 2>/dev/null),-lhiredis)
HIREDIS_SSL := $(shell $(PKG_CONFIG) --exists hiredis_ssl 2>/dev/null && echo yes || echo no)
HIREDIS_SSL_LIBS := $(shell $(PKG_CONFIG) --libs hiredis_ssl openssl 2>/dev/null)
endif
ifeq ($(RS_TLS),no)
HIREDIS_SSL := no
endif
ifeq ($(HIREDIS_SSL),yes)
HIREDIS_CFLAGS += -DRS_HAVE_TLS
HIREDIS_LIBS += $(HIREDIS_SSL_LIBS)
endif

SHLIB_LINK = $(HIREDIS_LIBS) -lanl
PG_CPPFLAGS = -I$(srcdir)/src $(HIREDIS_CFLAGS)
# Warnings are errors only in our own test runs (make test sets RS_WERROR=1),
# so that users on newer compilers can still build.
ifdef RS_WERROR
PG_CFLAGS = -Wall -Wextra -Wformat=2 -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -Werror
endif

# make installcheck runs these files against an installed redis_sync and a
# running PostgreSQL (PGHOST, PGPORT, PGUSER), with the Redis at REDIS_HOST
# (default 127.0.0.1) and REDIS_PORT; REGRESS=name runs one file.  Each file
# creates and drops what it uses, and touches only Redis keys of its own prefix.
REGRESS = options cluster_options tls fdw_scan fdw_pipeline fdw_pushdown fdw_score fdw_differential fdw_errors fdw_write fdw_import fdw_parallel fdw_shards jobs sync bad_input cron worker_settings target_probe upgrade
REGRESS_OPTS = --dbname=contrib_regression

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
# the Redis the pg_regress files use
REDIS_HOST ?= 127.0.0.1
export REDIS_HOST REDIS_PORT
installcheck: check-redis-port
check-redis-port:
	@test -n "$(REDIS_PORT)" || { echo "make installcheck needs REDIS_PORT (and REDIS_HOST, default 127.0.0.1): the Redis the tests use" >&2; exit 1; }
else
# No PostgreSQL to build against (yet): "make test" and "make demo" install
# it; a plain "make" says so instead of running another target.
all:
	@echo "pg_config not found: install postgresql-server-dev-15 (make test does), or set PG_CONFIG" >&2; exit 1
endif

.PHONY: check-redis-port test test-full test-matrix print-tls demo demo-stop bench bench-live bench-scan bench-cluster bench-versions
test:
	bash test/run_tests.sh
test-full:
	RS_FULL=1 bash test/run_tests.sh
test-matrix:
	bash test/matrix.sh
print-tls:
	@echo $(HIREDIS_SSL)
demo:
	bash test/demo.sh start
demo-stop:
	bash test/demo.sh stop
bench:
	bash bench/run_bench.sh
	bash bench/live_key.sh
	bash bench/cluster.sh
	bash bench/versions.sh
bench-live:
	bash bench/live_key.sh
bench-scan:
	BENCH_ONLY=scan bash bench/run_bench.sh
bench-cluster:
	bash bench/cluster.sh
bench-versions:
	bash bench/versions.sh
