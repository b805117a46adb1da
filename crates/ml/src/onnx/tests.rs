//! Unit tests of the ONNX binding; models from the real exporters are tested in tests/.
