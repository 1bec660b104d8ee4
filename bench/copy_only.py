#!/usr/bin/env python3
"""The live copy's script alone, as the coordinator sends it, without PostgreSQL.

usage: copy_only.py PORT SOURCE COPY [KEY_MEMBERS]

Takes the script and its page size from src/zset_snapshot.c (so that it is the
one the extension sends), and copies SOURCE into COPY a page at a time as
zr_copy_begin/zr_copy_step do: each script is given the last (score, member)
pair of the previous one, the copy's size, and the copy's keys (parts of
KEY_MEMBERS members, default 1000000, redis_sync.copy_key_members' default).
The copy is dropped at the end.  Prints "steps members seconds".  bench/live_key.sh runs it under the
same load as a sync, to see what the script's own work costs inside Redis
when no PostgreSQL work shares the machine.
"""
import os
import re
import socket
import sys
import time


class Resp:
    """A minimal RESP2 client: one command, one reply."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port))
        self.file = self.sock.makefile('rb')

    def call(self, *args):
        out = [b'*%d\r\n' % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(a), a))
        self.sock.sendall(b''.join(out))
        return self.read()

    def read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b'+':
            return rest.decode()
        if kind == b'-':
            raise RuntimeError(rest.decode())
        if kind == b':':
            return int(rest)
        if kind == b'$':
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b'*':
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError('unexpected reply %r' % line)


def script_from_source():
    src = open(os.path.join(os.path.dirname(__file__), '..', 'src', 'zset_snapshot.c')).read()
    body = re.search(r'rs_snapshot_script\[\] =\n(.*?);\n', src, re.S).group(1)
    script = ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', body)).encode().decode('unicode_escape')
    page = re.search(r'#define RS_SNAPSHOT_PAGE\s+"(\d+)"', src).group(1)
    return script, page


def part(copy, k):
    return copy if k == 0 else '%s:%d' % (copy, k)


def drop(r, copy):
    k = 0
    while True:
        if r.call('UNLINK', part(copy, k)) == 0 and k > 0:
            return
        k += 1


def main():
    port, source, copy = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    cap = int(sys.argv[4]) if len(sys.argv) > 4 else 1000000
    script, page = script_from_source()
    r = Resp(port)
    sha = r.call('SCRIPT', 'LOAD', script)
    drop(r, copy)
    score, member, had, steps = b'', b'', 0, 0
    start = time.time()
    while True:
        cur = had // cap
        keys = [source] + [part(copy, k) for k in range(cur + 2)]
        reply = r.call('EVALSHA', sha, len(keys), *keys, score, member, page, 600, had, cap)
        steps += 1
        if reply[0] < 0:
            raise RuntimeError('the copy failed: %r' % reply)
        had += reply[0]
        if len(reply) < 4:
            break
        score, member = reply[2], reply[3]
    secs = time.time() - start
    drop(r, copy)
    print(steps, had, '%.2f' % secs)


if __name__ == '__main__':
    main()
