"""Flight SQL messages by hand, for the tests' pyarrow.flight clients (clients.py,
tls_clients.py): pyarrow speaks Flight, not Flight SQL, so its commands are built and read here
as the few protobuf fields they need."""


def field(number, payload):
    """A length-delimited protobuf field."""
    key, length, out = (number << 3) | 2, len(payload), bytearray()
    out.append(key)
    while True:
        byte, length = length & 0x7F, length >> 7
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out) + payload


def varint(data, i):
    """A protobuf varint at `i`: its value and the offset after it."""
    value = shift = 0
    while True:
        byte, i = data[i], i + 1
        value, shift = value | (byte & 0x7F) << shift, shift + 7
        if not byte & 0x80:
            return value, i


def fields(message):
    """The length-delimited fields of a protobuf message, by number (varints skipped)."""
    out, i = {}, 0
    while i < len(message):
        key, i = varint(message, i)
        if key & 7 == 0:
            _, i = varint(message, i)
            continue
        assert key & 7 == 2, key
        length, i = varint(message, i)
        out[key >> 3], i = message[i : i + length], i + length
    return out


def flight_sql(name, payload):
    """A Flight SQL message wrapped in protobuf's Any."""
    return field(1, b"type.googleapis.com/arrow.flight.protocol.sql." + name) + field(2, payload)


def statement_query(sql):
    """The command of a Flight SQL statement query (for a FlightDescriptor)."""
    return flight_sql(b"CommandStatementQuery", field(1, sql))
