"""An emulated Android device that speaks the device side of the ADB transport protocol
over TCP, so that the real adb server (`adb connect 127.0.0.1:PORT`) and adbutils reach it
as they reach a phone in TCP/IP mode.

Implemented: CNXN (no AUTH: a device with adb authentication off), OPEN / OKAY / WRTE /
CLSE with per-stream flow control, ``shell:`` and ``shell,v2,...:`` (stdout, stderr, stdin,
exit code), and ``sync:`` (STAT, LIST, SEND, RECV, QUIT). Commands run with ``/bin/sh`` in
the device's sandbox folder, which holds an emulated phone: its sysfs/procfs under
``sysroot/``, ``bin/benchmark_model`` and ``bin/onnxruntime_perf_test`` (real inferences
on this machine, printed as the real tools print them).

    python -m hilbench.devices.adb_emulator --port 5555 --sandbox DIR
"""

from __future__ import annotations

import argparse
import asyncio
import os
import stat as stat_module
import struct
from dataclasses import dataclass, field
from pathlib import Path

from hilbench.devices.emulated import write_sysfs
from hilbench.devices.emulated_tools import install
from hilbench.devices.presets import get_preset

A_CNXN, A_OPEN, A_OKAY = 0x4E584E43, 0x4E45504F, 0x59414B4F
A_CLSE, A_WRTE = 0x45534C43, 0x45545257
VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
SYNC_CHUNK = 64 * 1024
BANNER = (
    b"device::ro.product.name=hilbench_emu;ro.product.model=hilbench-emulated-phone;"
    b"ro.product.device=emu;features=shell_v2,cmd\0"
)
STDIN, STDOUT, STDERR, EXIT, CLOSE_STDIN = 0, 1, 2, 3, 4


def packet(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    checksum = sum(data) & 0xFFFFFFFF
    header = struct.pack("<6I", command, arg0, arg1, len(data), checksum, command ^ 0xFFFFFFFF)
    return header + data


@dataclass
class Stream:
    local: int
    remote: int
    may_write: asyncio.Event = field(default_factory=asyncio.Event)
    inbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


class Connection:
    """One adb server connected to this device."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 sandbox: Path) -> None:
        self.reader, self.writer, self.sandbox = reader, writer, sandbox
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.max_payload = MAX_PAYLOAD
        self.tasks: set[asyncio.Future[None]] = set()

    async def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        self.writer.write(packet(command, arg0, arg1, data))
        await self.writer.drain()

    async def write(self, stream: Stream, data: bytes) -> None:
        """WRTE in chunks the host accepts, each after the host's OKAY for the last."""
        for start in range(0, len(data), self.max_payload) if data else []:
            await stream.may_write.wait()
            stream.may_write.clear()
            await self.send(A_WRTE, stream.local, stream.remote,
                            data[start:start + self.max_payload])

    async def close(self, stream: Stream) -> None:
        if self.streams.pop(stream.local, None) is not None:
            await self.send(A_CLSE, stream.local, stream.remote)

    async def serve(self) -> None:
        try:
            while True:
                header = await self.reader.readexactly(24)
                command, arg0, arg1, length, _, _ = struct.unpack("<6I", header)
                data = await self.reader.readexactly(length) if length else b""
                await self.dispatch(command, arg0, arg1, data)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for stream in list(self.streams.values()):
                stream.inbox.put_nowait(None)
            self.writer.close()

    async def dispatch(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == A_CNXN:
            self.max_payload = min(arg1 or MAX_PAYLOAD, MAX_PAYLOAD)
            await self.send(A_CNXN, VERSION, MAX_PAYLOAD, BANNER)
        elif command == A_OPEN:
            stream = Stream(self.next_id, arg0)
            self.next_id += 1
            self.streams[stream.local] = stream
            await self.send(A_OKAY, stream.local, stream.remote)
            stream.may_write.set()
            task = asyncio.ensure_future(self.service(stream, data.rstrip(b"\0").decode()))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif command == A_OKAY and arg1 in self.streams:
            self.streams[arg1].may_write.set()
        elif command == A_WRTE and arg1 in self.streams:
            await self.send(A_OKAY, arg1, arg0)
            self.streams[arg1].inbox.put_nowait(data)
        elif command == A_CLSE and arg1 in self.streams:
            self.streams.pop(arg1).inbox.put_nowait(None)

    async def service(self, stream: Stream, name: str) -> None:
        try:
            if name.startswith("shell"):
                options, _, command = name.partition(":")
                await Shell(self, stream, "v2" in options.split(",")[1:]).run(command)
            elif name == "sync:":
                await Sync(self, stream).run()
            # any other service: closed at once, as adbd does for what it does not offer
        finally:
            await self.close(stream)


class Shell:
    """``shell:`` (raw output) and ``shell,v2:`` (framed stdout/stderr/exit code)."""

    def __init__(self, connection: Connection, stream: Stream, v2: bool) -> None:
        self.connection, self.stream, self.v2 = connection, stream, v2

    async def emit(self, kind: int, data: bytes) -> None:
        if self.v2:
            data = struct.pack("<BI", kind, len(data)) + data
        if data:
            await self.connection.write(self.stream, data)

    async def run(self, command: str) -> None:
        process = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command or "true", cwd=self.connection.sandbox,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if self.v2 else asyncio.subprocess.STDOUT,
            env={**os.environ, "HOME": str(self.connection.sandbox)},
        )
        feeder = asyncio.ensure_future(self.feed(process))
        pumps = [self.pump(process.stdout, STDOUT)]
        if self.v2:
            pumps.append(self.pump(process.stderr, STDERR))
        await asyncio.gather(*pumps)
        code = await process.wait()
        feeder.cancel()
        await self.emit(EXIT, bytes([code & 0xFF]))

    async def pump(self, source: asyncio.StreamReader | None, kind: int) -> None:
        while source is not None:
            chunk = await source.read(SYNC_CHUNK)
            if not chunk:
                return
            await self.emit(kind, chunk)

    async def feed(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None
        buffer = b""
        while True:
            data = await self.stream.inbox.get()
            if data is None:
                process.stdin.close()
                return
            if not self.v2:
                process.stdin.write(data)
                continue
            buffer += data
            while len(buffer) >= 5:
                kind, length = struct.unpack("<BI", buffer[:5])
                if len(buffer) < 5 + length:
                    break
                body, buffer = buffer[5:5 + length], buffer[5 + length:]
                if kind == STDIN:
                    process.stdin.write(body)
                elif kind == CLOSE_STDIN:
                    process.stdin.close()


class Sync:
    """The file-transfer service (sync protocol v1)."""

    def __init__(self, connection: Connection, stream: Stream) -> None:
        self.connection, self.stream = connection, stream
        self.buffer = b""

    async def take(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            data = await self.stream.inbox.get()
            if data is None:
                return None
            self.buffer += data
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def path(self, raw: bytes) -> Path:
        text = raw.decode()
        return Path(text) if text.startswith("/") else self.connection.sandbox / text

    async def reply(self, tag: bytes, *numbers: int, data: bytes = b"") -> None:
        await self.connection.write(self.stream, tag + struct.pack(f"<{len(numbers)}I", *numbers)
                                    + data)

    async def run(self) -> None:
        while (header := await self.take(8)) is not None:
            tag, length = header[:4], struct.unpack("<I", header[4:])[0]
            argument = await self.take(length) if tag != b"QUIT" else b""
            if argument is None or tag == b"QUIT":
                return
            handler = {b"STAT": self.stat, b"LIST": self.list, b"SEND": self.receive_file,
                       b"RECV": self.send_file}.get(tag)
            if handler is None:
                await self.fail(f"unknown sync request {tag!r}")
                return
            await handler(argument)

    async def fail(self, message: str) -> None:
        await self.reply(b"FAIL", len(message.encode()), data=message.encode())

    async def stat(self, raw: bytes) -> None:
        try:
            info = self.path(raw).stat()
            await self.reply(b"STAT", info.st_mode, info.st_size, int(info.st_mtime))
        except OSError:
            await self.reply(b"STAT", 0, 0, 0)

    async def list(self, raw: bytes) -> None:
        folder = self.path(raw)
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            info = entry.stat()
            name = entry.name.encode()
            await self.reply(b"DENT", info.st_mode, info.st_size, int(info.st_mtime), len(name),
                             data=name)
        await self.reply(b"DONE", 0, 0, 0, 0)

    async def receive_file(self, raw: bytes) -> None:
        target_text, _, mode = raw.decode().rpartition(",")
        target = self.path(target_text.encode())
        chunks = []
        while (header := await self.take(8)) is not None:
            tag, number = header[:4], struct.unpack("<I", header[4:])[0]
            if tag == b"DONE":
                break
            chunk = await self.take(number)
            if tag != b"DATA" or chunk is None:
                await self.fail("bad SEND stream")
                return
            chunks.append(chunk)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"".join(chunks))
            target.chmod(stat_module.S_IMODE(int(mode or "420")))
        except OSError as exc:
            await self.fail(f"cannot write {target_text}: {exc.strerror}")
            return
        await self.reply(b"OKAY", 0)

    async def send_file(self, raw: bytes) -> None:
        try:
            data = self.path(raw).read_bytes()
        except OSError as exc:
            await self.fail(f"cannot read {raw.decode()}: {exc.strerror}")
            return
        for start in range(0, len(data), SYNC_CHUNK):
            chunk = data[start:start + SYNC_CHUNK]
            await self.reply(b"DATA", len(chunk), data=chunk)
        await self.reply(b"DONE", 0)


def prepare_sandbox(sandbox: Path) -> None:
    """Make the sandbox a phone: its sysfs under ``sysroot/``, ``bin/benchmark_model`` and
    ``bin/onnxruntime_perf_test``."""
    write_sysfs(get_preset("phone"), sandbox / "sysroot")
    install(sandbox / "bin")


async def serve(port: int, sandbox: Path, host: str = "127.0.0.1") -> asyncio.AbstractServer:
    sandbox.mkdir(parents=True, exist_ok=True)
    prepare_sandbox(sandbox)

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await Connection(reader, writer, sandbox).serve()

    return await asyncio.start_server(accept, host, port)


def main() -> None:
    parser = argparse.ArgumentParser(description="An emulated Android device for adb.")
    parser.add_argument("--port", type=int, default=5555)
    parser.add_argument("--sandbox", type=Path, required=True, help="the device's folder")
    args = parser.parse_args()

    async def run() -> None:
        server = await serve(args.port, args.sandbox.resolve())
        async with server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
