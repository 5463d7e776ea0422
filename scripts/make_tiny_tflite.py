"""Build hilbench's small TFLite model without TensorFlow: a dense ReLU network written
directly as a TFLite flatbuffer (schema v3), seeded weights, deterministic bytes.

    python scripts/make_tiny_tflite.py [--out hilbench/assets/tiny-mlp.tflite]

Input ``x`` float32 [batch, 256] (batch dynamic), output ``y`` float32 [batch, 10]:
FULLY_CONNECTED 256->512 + ReLU, 512->512 + ReLU, 512->10.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
from pathlib import Path

import flatbuffers
import numpy

SEED = 20261122
WIDTHS = (256, 512, 512, 10)
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "hilbench" / "assets" / "tiny-mlp.tflite"
FLOAT32, FULLY_CONNECTED, FULLY_CONNECTED_OPTIONS, RELU, NO_ACTIVATION = 0, 9, 8, 1, 0


def _ints(b: flatbuffers.Builder, values: list[int]) -> int:
    b.StartVector(4, len(values), 4)
    for value in reversed(values):
        b.PrependInt32(value)
    return int(b.EndVector())


def _tables(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return int(b.EndVector())


def _buffer(b: flatbuffers.Builder, data: bytes | None) -> int:
    vector = None
    if data:
        b.StartVector(1, len(data), 16)
        b.head = b.head - len(data)
        b.Bytes[b.head : b.head + len(data)] = data
        vector = b.EndVector()
    b.StartObject(3)
    if vector is not None:
        b.PrependUOffsetTRelativeSlot(0, vector, 0)
    return int(b.EndObject())


def _tensor(b: flatbuffers.Builder, name: str, shape: list[int], buffer: int,
            signature: list[int] | None) -> int:
    name_offset, shape_offset = b.CreateString(name), _ints(b, shape)
    signature_offset = _ints(b, signature) if signature else None
    b.StartObject(8)
    b.PrependUOffsetTRelativeSlot(0, shape_offset, 0)
    b.PrependInt8Slot(1, FLOAT32, 0)
    b.PrependUint32Slot(2, buffer, 0)
    b.PrependUOffsetTRelativeSlot(3, name_offset, 0)
    if signature_offset is not None:
        b.PrependUOffsetTRelativeSlot(7, signature_offset, 0)
    return int(b.EndObject())


def _operator(b: flatbuffers.Builder, inputs: list[int], output: int, activation: int) -> int:
    b.StartObject(4)
    b.PrependInt8Slot(0, activation, 0)
    options = b.EndObject()
    inputs_offset, outputs_offset = _ints(b, inputs), _ints(b, [output])
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(1, inputs_offset, 0)
    b.PrependUOffsetTRelativeSlot(2, outputs_offset, 0)
    b.PrependUint8Slot(3, FULLY_CONNECTED_OPTIONS, 0)
    b.PrependUOffsetTRelativeSlot(4, options, 0)
    return int(b.EndObject())


def build() -> bytes:
    rng = numpy.random.default_rng(SEED)
    b = flatbuffers.Builder(1 << 20)
    buffers = [_buffer(b, None)]  # buffer 0: the empty sentinel
    tensors = [_tensor(b, "x", [1, WIDTHS[0]], 0, [-1, WIDTHS[0]])]
    operators = []
    activation_index = 0
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(WIDTHS)):
        weight = (rng.standard_normal((fan_out, fan_in)) / numpy.sqrt(fan_in)).astype("<f4")
        bias = numpy.zeros(fan_out, "<f4")
        inputs = [activation_index]
        for name, values in ((f"dense{layer}/weight", weight), (f"dense{layer}/bias", bias)):
            buffers.append(_buffer(b, values.tobytes()))
            tensors.append(_tensor(b, name, list(values.shape), len(buffers) - 1, None))
            inputs.append(len(tensors) - 1)
        last = layer == len(WIDTHS) - 2
        name = "y" if last else f"dense{layer}/out"
        tensors.append(_tensor(b, name, [1, fan_out], 0, [-1, fan_out]))
        activation_index = len(tensors) - 1
        operators.append(_operator(b, inputs, activation_index, NO_ACTIVATION if last else RELU))
    tensors_offset, operators_offset = _tables(b, tensors), _tables(b, operators)
    inputs_offset, outputs_offset = _ints(b, [0]), _ints(b, [activation_index])
    subgraph_name = b.CreateString("main")
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tensors_offset, 0)
    b.PrependUOffsetTRelativeSlot(1, inputs_offset, 0)
    b.PrependUOffsetTRelativeSlot(2, outputs_offset, 0)
    b.PrependUOffsetTRelativeSlot(3, operators_offset, 0)
    b.PrependUOffsetTRelativeSlot(4, subgraph_name, 0)
    subgraph = b.EndObject()
    b.StartObject(4)  # OperatorCode: deprecated code, -, version, builtin code
    b.PrependInt8Slot(0, FULLY_CONNECTED, 0)
    b.PrependInt32Slot(2, 1, 1)
    b.PrependInt32Slot(3, FULLY_CONNECTED, 0)
    code = b.EndObject()
    codes_offset, subgraphs_offset = _tables(b, [code]), _tables(b, [subgraph])
    buffers_offset = _tables(b, buffers)
    description = b.CreateString("hilbench tiny-mlp")
    b.StartObject(8)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, codes_offset, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs_offset, 0)
    b.PrependUOffsetTRelativeSlot(3, description, 0)
    b.PrependUOffsetTRelativeSlot(4, buffers_offset, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    data = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"{args.out} {len(data) / 1e6:.2f} MB sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
