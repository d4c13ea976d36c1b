"""Frontends bring models into opencann's IR: ONNX files and protos (`onnx`), and later PyTorch."""
