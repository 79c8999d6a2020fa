#!/usr/bin/env python3
"""Regenerate slotline-lkffi's protobuf FileDescriptorSet from the pinned `livekit` wheel.

The wheel's generated modules `livekit/rtc/_proto/*_pb2.py` each hold exactly one serialized
`FileDescriptorProto`: the bytes literal passed to `AddSerializedFile(...)`. This script reads those
literals out of the wheel (a zip file) with `ast`, without importing them, orders the files so that
every file comes after the files it imports, and writes them as one
`FileDescriptorSet { repeated FileDescriptorProto file = 1; }` (tag 0x0a, varint length, bytes; repeated).

Standard library only: no protoc, no python-protobuf. The wheel is checked against its pinned sha256
before anything is read from it, and the output is compared with the committed set unless --write.

usage:
  wheel_fds.py WHEEL            check that WHEEL derives exactly the committed proto/ set
  wheel_fds.py WHEEL --write    (re)write the committed set from WHEEL
  wheel_fds.py WHEEL --out FILE write the set to FILE

Get the wheel with `scripts/setup.sh --livekit` (it keeps it in $SETUP_LIVEKIT_CACHE) or:
  pip download --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 --require-hashes \
      -r scripts/livekit-ffi-requirements.txt -d DIR
"""
import argparse
import ast
import hashlib
import os
import sys
import zipfile

WHEEL_NAME = "livekit-1.2.1-py3-none-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "c9a0269cc23a889e20f716405a59fbae375a0248ea3d2d043da103cfb0b71711"
HERE = os.path.dirname(os.path.abspath(__file__))
COMMITTED = os.path.join(HERE, "..", "proto", "livekit_ffi_wheel_1.2.1.fds")
PROTO_DIR = "livekit/rtc/_proto/"


def varint(n):
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def read_varint(buf, i):
    shift = n = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def name_and_dependencies(fdp):
    """Fields 1 (name) and 3 (dependency) of a serialized FileDescriptorProto."""
    i, name, deps = 0, None, []
    while i < len(fdp):
        key, i = read_varint(fdp, i)
        field, wire_type = key >> 3, key & 7
        if wire_type == 2:
            length, i = read_varint(fdp, i)
            value = fdp[i : i + length]
            i += length
            if field == 1:
                name = value.decode()
            elif field == 3:
                deps.append(value.decode())
        elif wire_type == 0:
            _, i = read_varint(fdp, i)
        elif wire_type == 1:
            i += 8
        elif wire_type == 5:
            i += 4
        else:
            raise ValueError("unexpected wire type %d" % wire_type)
    if name is None:
        raise ValueError("a FileDescriptorProto without a name")
    return name, deps


def serialized_files(wheel):
    """{file name: (serialized FileDescriptorProto, [dependencies])} of every _pb2 module."""
    files = {}
    with zipfile.ZipFile(wheel) as z:
        for member in sorted(z.namelist()):
            if not (member.startswith(PROTO_DIR) and member.endswith("_pb2.py")):
                continue
            tree = ast.parse(z.read(member))
            blobs = [
                call.args[0].value
                for call in ast.walk(tree)
                if isinstance(call, ast.Call)
                and getattr(call.func, "attr", "") == "AddSerializedFile"
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, bytes)
            ]
            if len(blobs) != 1:
                sys.exit("%s: expected one AddSerializedFile(b'...'), found %d" % (member, len(blobs)))
            name, deps = name_and_dependencies(blobs[0])
            files[name] = (blobs[0], deps)
    if not files:
        sys.exit("%s holds no %s*_pb2.py" % (wheel, PROTO_DIR))
    return files


def dependencies_first(files):
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        if name not in files:
            sys.exit("the wheel does not ship %s, which another descriptor imports" % name)
        for dep in files[name][1]:
            visit(dep)
        order.append(name)

    for name in sorted(files):
        visit(name)
    return order


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite the committed descriptor set")
    group.add_argument("--out", help="write the descriptor set here")
    args = parser.parse_args()

    data = open(args.wheel, "rb").read()
    got = hashlib.sha256(data).hexdigest()
    if got != WHEEL_SHA256:
        sys.exit("%s: sha256 %s, expected %s (%s)" % (args.wheel, got, WHEEL_SHA256, WHEEL_NAME))
    files = serialized_files(args.wheel)
    order = dependencies_first(files)
    fds = b"".join(b"\x0a" + varint(len(files[n][0])) + files[n][0] for n in order)
    digest = hashlib.sha256(fds).hexdigest()
    print("%d files, %d bytes, sha256 %s: %s" % (len(order), len(fds), digest, " ".join(order)))

    if args.write or args.out:
        out = COMMITTED if args.write else args.out
        with open(out + ".partial", "wb") as f:
            f.write(fds)
        os.replace(out + ".partial", out)
        print("wrote %s" % out)
        if args.write:
            print("now update FDS_SHA256 in build.rs and proto/SOURCE.md to %s" % digest)
        return
    committed = open(COMMITTED, "rb").read()
    if committed != fds:
        sys.exit("the committed %s differs from what %s derives" % (COMMITTED, WHEEL_NAME))
    print("the committed descriptor set matches the wheel")


if __name__ == "__main__":
    main()
