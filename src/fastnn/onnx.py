"""ONNX export of fastnn's estimators through skl2onnx (``pip install ".[onnx]"``).

Importing this module registers a converter and a shape calculator for
:class:`fastnn.MLPClassifier` and :class:`fastnn.MLPRegressor` with skl2onnx,
so ``skl2onnx.to_onnx`` converts them, alone or inside a Pipeline, as it does
scikit-learn's MLPs::

    import fastnn.onnx                      # registers the converters
    from skl2onnx import to_onnx
    onx = to_onnx(clf, X[:1])               # X's dtype fixes the graph's dtype

The graph computes what ``predict``/``predict_proba`` compute: BatchNorm is
folded into the Dense layers (as fastnn's own inference does), then
MatMul + Add and the layer's activation per layer. Every hidden activation
is supported, also one per layer. A classifier has two outputs, as
skl2onnx's converter for scikit-learn's MLPClassifier: ``label`` (int64 or
string; an int64 indicator matrix for multilabel targets) and
``probabilities`` (a list of dicts unless converted with
``options={"zipmap": False}``, which float64 graphs need: onnxruntime's
ZipMap takes float32 only). A regressor has one output ``variable`` of
shape (n_samples, n_outputs).

The graph is float32 when converted with float32 sample data and float64
with float64 data; a float32 model converted to a float64 graph computes in
float64 from its float32 weights.
"""

import numpy as np

try:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (DoubleTensorType, FloatTensorType,
                                            Int64TensorType, StringTensorType,
                                            guess_proto_type)
    from skl2onnx.common.utils import check_input_and_output_numbers
    from skl2onnx.proto import onnx_proto
except ImportError as exc:  # an optional dependency
    raise ImportError(
        "fastnn.onnx needs skl2onnx (and onnxruntime to run the models): "
        "`pip install skl2onnx onnxruntime`, or `pip install \".[onnx]\"` from "
        "fastnn's source directory.") from exc

from ._mlp import MLPClassifier, MLPRegressor

__all__ = ["register_converters"]

# ONNX's Selu defaults: SELU's constants (Klambauer et al.) as float32, the
# type of ONNX float attributes.
_SELU_ALPHA = 1.6732632423543772
_SELU_GAMMA = 1.0507009873554805

_CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "nocl": [True, False],
                       "output_class_labels": [False, True]}


# ----------------------------------------------------------------------
# shape calculators
# ----------------------------------------------------------------------
def _float_type(operator):
    """Tensor type of the graph's arithmetic: double for double input, else float."""
    return (DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType)
            else FloatTensorType)


def _multilabel(est):
    return est._label_binarizer.y_type_ == "multilabel-indicator"


def _class_labels(est):
    """classes_ as ONNX can hold them: int64 or UTF-8 strings."""
    classes = np.asarray(est.classes_)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64), onnx_proto.TensorProto.INT64
    if classes.dtype.kind == "f":
        if np.all(classes == np.round(classes)):
            return classes.astype(np.int64), onnx_proto.TensorProto.INT64
        raise NotImplementedError("ONNX export needs integer or string class labels, got "
                                  f"non-integral floats {classes}.")
    return (np.array([str(c).encode("utf-8") for c in classes]),
            onnx_proto.TensorProto.STRING)


def _classifier_shapes(operator):
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=2)
    est = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    k = len(est.classes_)
    _, label_proto = _class_labels(est)
    label_type = StringTensorType if label_proto == onnx_proto.TensorProto.STRING \
        else Int64TensorType
    operator.outputs[0].type = label_type([n, k] if _multilabel(est) else [n])
    operator.outputs[1].type = _float_type(operator)([n, k])


def _regressor_shapes(operator):
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator)([n, operator.raw_operator.n_outputs_])


# ----------------------------------------------------------------------
# converters
# ----------------------------------------------------------------------
def _folded_layers(est):
    """(kernels, biases) of the network with BatchNorm folded in, as fastnn's
    own inference uses them."""
    layout = est._layout()
    params, stats = est._pack(layout, est._model_dtype())
    plain, folded = layout.fold(params, stats, float(est.batch_norm_epsilon))
    return ([plain.kernel(folded, l) for l in range(plain.n_layers)],
            [plain.bias(folded, l) for l in range(plain.n_layers)])


class _Graph:
    """Adds nodes to skl2onnx's container with fresh names."""

    def __init__(self, scope, container, proto_dtype):
        self.scope, self.container, self.proto_dtype = scope, container, proto_dtype

    def constant(self, name, value, proto_dtype=None):
        value = np.asarray(value)
        var = self.scope.get_unique_variable_name(name)
        self.container.add_initializer(var, proto_dtype or self.proto_dtype,
                                       list(value.shape), value.ravel())
        return var

    def op(self, op_type, inputs, output=None, **attrs):
        output = output or self.scope.get_unique_variable_name(op_type.lower())
        self.container.add_node(op_type, inputs, output,
                                name=self.scope.get_unique_operator_name(op_type), **attrs)
        return output

    def activation(self, name, x, est):
        """fastnn's activation `name` (csrc/activation.c) applied to x."""
        if name == "identity":
            return x
        if name == "logistic":
            return self.op("Sigmoid", [x])
        if name == "tanh":
            return self.op("Tanh", [x])
        if name == "relu":
            return self.op("Relu", [x])
        if name == "swish":
            return self.op("Mul", [x, self.op("Sigmoid", [x])])
        if name == "softmax":
            return self.op("Softmax", [x], axis=1)
        if name == "exp":
            return self.op("Exp", [x])
        if name == "leaky_relu":
            slope = float(est.negative_slope)
            return self._where_positive(x, self.op("Mul", [x, self.constant("slope", slope)]))
        if name in ("elu", "selu"):
            # Composed from Exp/Where instead of ONNX's Elu/Selu, which
            # onnxruntime implements for float32 only.
            expm1 = self.op("Sub", [self.op("Exp", [x]), self.constant("one", 1.0)])
            if name == "elu":  # alpha = 1
                return self._where_positive(x, expm1)
            negative = self.op("Mul", [expm1, self.constant("alpha", _SELU_ALPHA)])
            return self.op("Mul", [self._where_positive(x, negative),
                                   self.constant("gamma", _SELU_GAMMA)])
        if name == "gelu":  # exact form: 0.5 x (1 + erf(x / sqrt(2)))
            scaled = self.op("Mul", [x, self.constant("rsqrt2", 0.5 ** 0.5)])
            if self.proto_dtype == onnx_proto.TensorProto.DOUBLE:
                # onnxruntime's Erf takes float32 only: a float64 graph's gelu
                # is then as precise as float32 (about 1e-7 relative).
                f32 = onnx_proto.TensorProto.FLOAT
                erf = self.op("Cast", [self.op("Erf", [self.op("Cast", [scaled], to=f32)])],
                              to=self.proto_dtype)
            else:
                erf = self.op("Erf", [scaled])
            half = self.op("Mul", [x, self.constant("half", 0.5)])
            return self.op("Mul", [half, self.op("Add", [erf, self.constant("one", 1.0)])])
        if name == "mish":  # x tanh(softplus(x)), softplus = log(1 + exp(x))
            softplus = self.op("Log", [self.op("Add", [self.op("Exp", [x]),
                                                       self.constant("one", 1.0)])])
            return self.op("Mul", [x, self.op("Tanh", [softplus])])
        raise NotImplementedError(f"no ONNX conversion for activation {name!r}")

    def _where_positive(self, x, otherwise):
        """x where x > 0, else `otherwise`."""
        positive = self.op("Greater", [x, self.constant("zero", 0.0)])
        return self.op("Where", [positive, x, otherwise])


def _forward(scope, operator, container):
    """Nodes computing the estimator's output activations; returns the
    graph (for more nodes) and the name of the output variable."""
    est = operator.raw_operator
    proto_dtype = guess_proto_type(_float_type(operator)())
    g = _Graph(scope, container, proto_dtype)
    x = g.op("Cast", [operator.inputs[0].full_name], to=proto_dtype)
    kernels, biases = _folded_layers(est)
    hidden_acts = est._hidden_activations(len(kernels) - 1)
    for l, (w, b) in enumerate(zip(kernels, biases)):
        x = g.op("Add", [g.op("MatMul", [x, g.constant("coefficient", w)]),
                         g.constant("intercepts", b[None, :])])
        act = hidden_acts[l] if l < len(hidden_acts) else est.out_activation_
        x = g.activation(act, x, est)
    return g, x


def _convert_classifier(scope, operator, container):
    est = operator.raw_operator
    g, out = _forward(scope, operator, container)
    label, proba = operator.outputs[0].full_name, operator.outputs[1].full_name
    if _multilabel(est):
        # predict: each output > 0.5 (LabelBinarizer.inverse_transform)
        g.op("Identity", [out], proba)
        positive = g.op("Greater", [out, g.constant("half", 0.5)])
        g.op("Cast", [positive], label, to=onnx_proto.TensorProto.INT64)
        return
    if est.n_outputs_ == 1:  # binary: the logistic output is P(classes_[1])
        g.op("Concat", [g.op("Sub", [g.constant("one", 1.0), out]), out], proba, axis=1)
    else:
        g.op("Identity", [out], proba)
    classes, label_proto = _class_labels(est)
    best = g.op("ArgMax", [proba], axis=1, keepdims=0)
    g.op("Gather", [g.constant("classes", classes, label_proto), best], label, axis=0)


def _convert_regressor(scope, operator, container):
    g, out = _forward(scope, operator, container)
    g.op("Identity", [out], operator.outputs[0].full_name)


def register_converters():
    """Register fastnn's estimators with skl2onnx (done on importing this
    module; calling it again is harmless).

    After this, ``skl2onnx.to_onnx`` and ``skl2onnx.convert_sklearn``
    convert :class:`fastnn.MLPClassifier` (options ``zipmap``, ``nocl`` and
    ``output_class_labels``, as for scikit-learn's MLPClassifier) and
    :class:`fastnn.MLPRegressor`, also as steps of a Pipeline.
    """
    update_registered_converter(MLPClassifier, "FastnnMLPClassifier", _classifier_shapes,
                                _convert_classifier, options=_CLASSIFIER_OPTIONS)
    update_registered_converter(MLPRegressor, "FastnnMLPRegressor", _regressor_shapes,
                                _convert_regressor)


register_converters()
