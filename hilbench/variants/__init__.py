"""Compressed variants of an ONNX model (pruning, sparsity, quantization) and their accuracy
on a dataset. Imports only hilbench.core, onnx, onnxruntime and numpy."""
