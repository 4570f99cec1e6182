"""The socket of an association we accept, read in as few calls as the data comes in.

pynetdicom reads a PDU from its socket 4 KiB per call, each piece appended to a
growing buffer: a 128 KiB P-DATA-TF of a C-STORE takes 32 calls, a 512x512 CT image
about 140.  :func:`read_in_large_pieces` makes an association's socket read each
PDU into a buffer of its full length, as much per call as the kernel has (what it
returns, and its end of stream, are as before)."""

from __future__ import annotations

from pynetdicom.association import Association


def read_in_large_pieces(assoc: Association) -> None:
    """Read ``assoc``'s PDUs in large pieces (before its threads start)."""
    wrapper = assoc.dul.socket
    if wrapper is None:
        return

    def recv(nr_bytes: int) -> bytearray:
        sock = wrapper.socket
        assert sock is not None  # pynetdicom reads only a connected socket
        buffer = bytearray(nr_bytes)
        read = 0
        with memoryview(buffer) as view:
            while read < nr_bytes:
                count = sock.recv_into(view[read:])
                if not count:  # the peer closed: what was read, as pynetdicom does
                    break
                read += count
        if read < nr_bytes:
            del buffer[read:]
        return buffer

    wrapper.recv = recv  # type: ignore[method-assign]
