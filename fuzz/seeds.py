#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<target>/ from real inputs: protobuf requests
and tickets as clients send them (hand-encoded: no protobuf package needed), config
files, pool URLs, Redis command lines and InfluxDB chunked bodies. Rerun after changing
an input shape of a target; the files are committed. Inputs the fuzzers found worth
keeping (corpus/config/password_in_query: a URL whose query repeats its password;
corpus/params/timestamp_second_overflow: the Flight parameter overflow it found) are
committed beside these and not generated here."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 1:
        return key + payload
    return key + varint(len(payload)) + payload


def s(num, text):
    return field(num, 2, text.encode() if isinstance(text, str) else text)


def param(kind, value):
    # Param oneof: 1 null, 2 bool, 3 int64, 4 double, 5 string, 6 bytes, 7 timestamp, 8 decimal
    if kind in (1, 2, 3):
        return field(kind, 0, value)
    if kind == 4:
        return field(4, 1, struct.pack("<d", value))
    if kind == 7:
        seconds, nanos = value
        return field(7, 2, field(1, 0, seconds) + field(2, 0, nanos))
    return s(kind, value)


PARAMS = [
    param(1, 1), param(2, 1), param(3, -42), param(4, 2.5), param(5, "héllo"),
    param(6, b"\x00\xff"), param(7, (1_700_000_000, 123_456_789)), param(8, "-12.3400"),
    param(7, ((1 << 63) - 1, 999_999_999)), param(8, "1e5"),
]


def query_request(sql, params, batch_size=0):
    body = s(1, "pg") + s(2, sql) + b"".join(field(3, 2, p) for p in params)
    return body + (field(5, 0, batch_size) if batch_size else b"")


def query_ticket(sql, params):
    return s(1, "pg") + s(2, sql) + b"".join(field(3, 2, p) for p in params) + field(4, 0, 100)


def any_of(url, value):
    return s(1, "type.googleapis.com/" + url) + s(2, value)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# params: first byte even → protobuf (QueryRequest / ExecuteBatchRequest), odd → Arrow.
write("params", "query", b"\x00" + query_request("SELECT $1", PARAMS))
stmt = s(1, "INSERT INTO t VALUES ($1)") + field(2, 2, PARAMS[2])
write("params", "batch", b"\x00" + field(2, 2, stmt) * 3 + field(3, 0, 1))
# Arrow: rows, columns, then per column a type byte and per row (valid, i64, len, bytes).
def arrow_col(kind, rows, extra=b""):
    out = bytes([kind])
    for r in range(rows):
        out += b"\x01" + struct.pack("<q", r * 1_000_003 - 7) + b"\x03abc"
    return out + extra
write("params", "arrow_ints", b"\x01\x04\x02" + arrow_col(5, 4) + arrow_col(12, 4))
write("params", "arrow_time", b"\x01\x02\x01" + arrow_col(18, 2, b"\x01\x00"))
write("params", "arrow_decimal", b"\x01\x03\x01" + arrow_col(19, 3, b"\x0a\x02"))

# ticket: ticket / descriptor bytes.
qt = query_ticket("SELECT $1::int8", PARAMS[:3])
write("ticket", "bare", qt)
write("ticket", "any_query", any_of("dbpool.v1.QueryTicket", qt))
write("ticket", "any_bulk", any_of("dbpool.v1.BulkInsertCommand", s(1, "pg") + s(2, "t") + field(3, 0, 1)))
write("ticket", "flightsql_statement", any_of("arrow.flight.protocol.sql.CommandStatementQuery", s(1, "SELECT 1")))
write("ticket", "flightsql_ticket", any_of("arrow.flight.protocol.sql.TicketStatementQuery", s(1, qt)))
write("ticket", "flightsql_prepared", any_of("arrow.flight.protocol.sql.CommandPreparedStatementQuery", s(1, "ps-1")))

# config: first byte % 4 → 0 TOML, 1 URL, 2 fields, 3 CreatePoolRequest.
example = open(os.path.join(HERE, "..", "deploy", "dbpool.example.toml")).read()
write("config", "example_toml", "\x00" + example)
write("config", "small_toml", "\x00[server]\nlisten = \"127.0.0.1:0\"\n[server.limits]\nmax_pools = 2\n[pools.pg]\nurl = \"postgres://u:secretpw1@db/app\"\nmax_connections = 4\n[pools.r]\nurl = \"redis://127.0.0.1:6379/0\"\nsettings = { denied_commands = \"FLUSHALL\" }\n")
for i, u in enumerate([
    "postgres://bob:hunter2hunter2@db:5432/app?password=x&sslmode=disable",
    "sqlite:///tmp/a.db", "mssql://sa:Passw0rd!x@127.0.0.1:1433/master?trust_cert=true",
    "rediss://:tokentoken@r:6380/2", "influxdbs://u:p4ssw0rdX@influx:8086/db?rp=autogen",
    "postgres://[::1]:5432/db", "pg://%zz@h/",
]):
    write("config", f"url{i}", "\x01" + u)
write("config", "fields", b"\x02\x00\x09localhost\x38\x15\x03app\x01u\x08p@ss:w/d")
write("config", "create_pool", b"\x03" + s(1, "pg") + s(3, "postgresql") + s(4, "db") + field(5, 0, 70968) + s(8, "pw") + s(11, s(1, "tls_ca_file") + s(2, "/etc/passwd")))

# redis_command: param count, params, settings flags, then the line.
write("redis_command", "plain", b"\x00\x00\x00SET \"user:1\" 'na\\'me' \"a b\\x41\\n\" x")
write("redis_command", "placeholders", b"\x02\x05\x01k\x02" + struct.pack("<q", -3) + b"\x01\x06FLUSHALL,config|set\x00SET $1 $2 \"$1\"")
write("redis_command", "allowed", b"\x00\x00\x01\x06CONFIG CONFIG GET maxmemory")

# influx_chunked: batch size, select, typed, 8 read sizes, then the body.
head = b"\x02\x01\x01" + bytes([7, 20, 1, 63, 5, 9, 33, 2])
write("influx_chunked", "chunks", head + b'{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","v","s","b"],"values":[[1,2.5,"x",true],[2,3,null,false]]}],"partial":true}]}\n{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"b"},"columns":["time","v","s","b"],"values":[[3,4.5,"y",true]]}]}]}\n')
write("influx_chunked", "error", head + b'{"results":[{"statement_id":0,"error":"database not found: x"}]}\n')
write("influx_chunked", "show", b"\x03\x00\x00" + bytes([64] * 8) + b'{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["_internal"],["db"]]}]}]}')
write("influx_chunked", "count", head + b'{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","count"],"values":[[0,9223372036854775807],[0,18446744073709551615],[0,-1e400]]}]}]}\n')
