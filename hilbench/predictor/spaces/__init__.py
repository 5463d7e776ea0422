"""Search spaces with public latency data: ONNX graph generators and table loaders.

``nb201.build(cell)``, ``fbnet.build(arch)`` and ``hat.build(HatConfig)`` build, in memory, the
ONNX graphs of NAS-Bench-201, FBNet (CIFAR-100) and HAT (WMT14 en-de) architectures as their
reference code defines them, with seeded random weights; ``public.load_nb201`` /
``load_fbnet`` / ``load_hat`` read the measured latencies of those architectures.
"""
