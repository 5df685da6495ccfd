"""fastnn.MLPClassifier and fastnn.MLPRegressor."""

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import column_or_1d, validate_data

from ._base import STOCHASTIC_SOLVERS, BaseMultilayerPerceptron, _check_fitted

_PARAMETERS_DOC = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.

    activation : str or list of str, default='relu'
        Hidden-layer activation, one name for all hidden layers or one per
        hidden layer: 'identity', 'logistic', 'tanh', 'relu' (as sklearn),
        'leaky_relu' (negative slope ``negative_slope``), 'elu' (alpha=1),
        'selu' (lambda=1.0507..., alpha=1.6733..., Klambauer et al.), 'swish'
        (x * sigmoid(x)), 'gelu' (the exact form ``0.5 x (1 + erf(x / sqrt 2))``,
        Keras's default ``approximate=False``) or 'mish'
        (``x * tanh(softplus(x))``).

    solver : {'adam', 'sgd', 'lbfgs', 'adagrad', 'rmsprop', 'adamax', 'nadam', 'adamw'}, \
default='adam'
        'sgd' (with ``momentum`` and ``nesterovs_momentum``) and 'adam' follow
        sklearn exactly; 'adagrad', 'rmsprop', 'adamax', 'nadam' and 'adamw'
        (Adam with decoupled ``weight_decay``) follow Keras 3 with this
        estimator's ``epsilon``; 'lbfgs' is
        scipy.optimize's L-BFGS-B on the full-batch loss and gradient computed
        in C (no BatchNorm or dropout with lbfgs).

    alpha : float or list of float, default=0.0001
        Strength of the weight penalty, divided by the mini-batch's sample
        weight sum as in sklearn (so 'l2' is exactly sklearn's MLP penalty
        ``0.5 * alpha * ||W||^2 / n``). Biases and BatchNorm are not penalized.
        A list gives one strength per Dense layer (``len(hidden_layer_sizes)
        + 1``, the output layer last; None or 0: that kernel is not
        penalized), as Keras's per-layer ``kernel_regularizer``.

    batch_size : int or 'auto', default='auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``.

    learning_rate : str or schedule object, default='constant'
        sklearn's 'constant', 'invscaling' and 'adaptive' (which, as in
        sklearn, only change the 'sgd' solver's rate), or a schedule applied to
        every solver but lbfgs: 'power', 'exponential', 'piecewise',
        'plateau', 'one_cycle', 'cosine', 'polynomial', or an instance from
        :mod:`fastnn.schedules` (``Power``, ``Exponential``,
        ``PiecewiseConstant``, ``ReduceOnPlateau``, ``OneCycle``,
        ``CosineDecay``, ``PolynomialDecay``, ...) whose parameters can be
        searched as ``learning_rate__<param>``. Rates are computed per step
        in Python and handed to the C loop once per epoch.

    learning_rate_init : float, default=0.001
        The initial (or, for schedules, base) learning rate.

    power_t : float, default=0.5
        Exponent of 'invscaling'.

    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations (lbfgs).

    shuffle : bool, default=True
        Shuffle the samples every epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, the validation split, shuffling, dropout
        masks and MC-dropout passes, drawn in scikit-learn's order (without
        dropout the draws are exactly scikit-learn's).

    tol : float, default=1e-4
        Improvement below which an epoch counts as not improving (see
        ``n_iter_no_change``); lbfgs's gradient tolerance.

    verbose : bool or int, default=False
        Print progress messages: scikit-learn's ``Iteration N, loss = ...``
        line per epoch (N counted within the call, as ``n_iter_``) followed by
        the epoch's time, validation loss and learning rate, and with early
        stopping its ``Validation score: ...`` line; 2 also draws a progress
        bar within each epoch (tqdm).

    warm_start : bool, default=False
        Reuse the previous solution (``coefs_``, ``intercepts_`` and the BN
        arrays, which may be set by hand) as the starting point.

    momentum : float, default=0.9
        Momentum of the 'sgd' solver.

    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with 'sgd'.

    early_stopping : bool, default=False
        Stop when the validation data stops improving (see ``monitor``),
        keeping the best epoch's weights (``restore_best_weights``). The
        validation data is fit's ``X_val``/``y_val`` when given, else
        ``validation_fraction`` of the data held out (stratified for
        single-output classification). Without early stopping, training
        stops when the training loss stops improving, as scikit-learn; given
        ``X_val`` is then still validated after every epoch (``history_``,
        ``validation_scores_``, the plateau schedule), as Keras's
        ``validation_data`` without an ``EarlyStopping`` callback. (Here
        fastnn differs from HistGradientBoosting, which refuses ``X_val``
        with ``early_stopping=False``.) To hold out ``validation_fraction``
        and never stop on it, set ``early_stopping=True`` and
        ``n_iter_no_change=np.inf``. If training diverges with early
        stopping, as scikit-learn: a warning, NaN losses and validation
        scores for the remaining epochs, and the best epoch's weights
        (without early stopping, or with ``restore_best_weights=False``, a
        :class:`fastnn.DivergenceError`).

    validation_fraction : float, default=0.1
        Fraction held out for early stopping when fit gets no ``X_val``.

    beta_1, beta_2 : float, default=0.9, 0.999
        Moment decay rates of 'adam', 'adamax' and 'nadam'.

    epsilon : float, default=1e-8
        Numerical stability term of adam, adagrad, rmsprop, adamax, nadam.

    n_iter_no_change : int or np.inf, default=10
        Epochs without an improvement of ``tol`` before stopping (or, with
        'adaptive' or a schedule that reacts to it, lowering the rate):
        scikit-learn stops after ``n_iter_no_change + 1`` such epochs,
        ``monitor='val_loss'`` after ``n_iter_no_change`` (Keras's
        ``patience``). ``np.inf`` never stops.

    max_fun : int, default=15000
        Maximum number of loss evaluations of lbfgs.

    rho : float, default=0.9
        Decay of RMSProp's mean square.

    initial_accumulator_value : float, default=0.1
        Starting value of AdaGrad's accumulators (Keras's default).

    kernel_initializer : str or VarianceScaling, default='auto'
        Initialization of each layer: 'sklearn' is scikit-learn's scheme
        (kernel and bias uniform in +-sqrt(6 / (fan_in + fan_out)), 2 instead
        of 6 for 'logistic', drawn from ``random_state`` as scikit-learn does);
        'glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal',
        'lecun_uniform', 'lecun_normal' follow Keras 3 (VarianceScaling,
        normal variants truncated at two standard deviations, biases start at
        zero, the output layer Glorot uniform as Keras's Dense default).
        'auto' picks per layer from its activation: 'sklearn' for identity,
        logistic, tanh and relu, He uniform for leaky_relu, elu, swish, gelu and mish,
        LeCun normal for selu (see :func:`fastnn._init.resolve_initializer`);
        the output layer follows the ``activation`` parameter as in
        scikit-learn (the last hidden activation when given per layer). So by
        default, with scikit-learn's activations, the same ``random_state``
        gives scikit-learn's model. A
        :class:`fastnn.initializers.VarianceScaling` object gives any scale,
        fan mode and distribution (searchable as
        ``kernel_initializer__<param>``).

    batch_norm : {False, True, 'before', 'after'}, default=False
        BatchNormalization on every hidden layer, before (True) or after its
        activation. With 'before' the hidden Dense layers have no bias (BN's
        beta replaces it; their ``intercepts_`` stay zero). At predict time
        BN is folded into the Dense weights.

    batch_norm_input : bool, default=False
        A BatchNormalization layer on the inputs.

    batch_norm_momentum : float, default=0.99
        Keras semantics: ``moving = m * moving + (1 - m) * batch``.

    batch_norm_epsilon : float, default=1e-3
        Added to the (biased) batch variance.

    clipvalue, clipnorm, global_clipnorm : float or None, default=None
        Gradient clipping with Keras semantics: element-wise to
        [-clipvalue, clipvalue]; each tensor rescaled to an L2 norm of at
        most clipnorm; all gradients rescaled together to a global norm of at
        most global_clipnorm. At most one may be set.

    penalty : {'l2', 'l1', 'elasticnet'}, default='l2'
        Weight penalty with ``alpha``: 'l2' is sklearn's; 'l1' adds
        ``alpha * |W|_1 / n``; 'elasticnet' mixes them with ``l1_ratio`` as
        SGDClassifier does.

    l1_ratio : float, default=0.15
        Elastic-net mixing (1 = pure l1).

    dropout : float or list of float, default=0.0
        Dropout rate on the input of each Dense layer (as the chapter's
        example: inputs and every hidden layer's output); one float for all
        or one rate per Dense layer (``len(hidden_layer_sizes) + 1``).

    dropout_kind : {'auto', 'standard', 'alpha'}, default='auto'
        'standard' inverted dropout or Keras's AlphaDropout; 'auto' uses
        alpha dropout when every hidden activation is 'selu'.

    max_norm : float, list or None, default=None
        Max-norm constraint (Keras ``MaxNorm(max_norm, axis=0)``) on each
        unit's incoming weights, applied after every update. A float
        constrains every Dense layer, the output layer included; a list gives
        one value per Dense layer (``len(hidden_layer_sizes) + 1``, None for
        an unconstrained layer), e.g. ``[r, r, None]`` to constrain only the
        hidden layers as Keras does when only they get a
        ``kernel_constraint``.

    restore_best_weights : bool, default=True
        With early stopping, keep the weights of the best validation epoch
        by ``monitor`` (sklearn always does); False keeps the last epoch's.

    dtype : {None, 'float32', 'float64'}, default=None
        The type the network computes in. None: the input's float type, as
        scikit-learn (float32 X trains in float32, anything else in float64).
        'float32' trains in float32 whatever the input, as Keras and PyTorch
        do by default: float64 X is converted a mini-batch at a time (never
        copied whole), giving the model that ``X.astype(np.float32)`` would.
        The fitted arrays are of this type; warm_start and partial_fit keep
        the type of the arrays already there. Predictions take X of either
        float type without copying it.

    negative_slope : float, default=0.01
        Slope of 'leaky_relu' for negative inputs: ``x if x > 0 else
        negative_slope * x``. The default is PyTorch's (``nn.LeakyReLU``);
        Keras 3's ``keras.activations.leaky_relu`` uses 0.2 (the chapter's
        value) and its ``LeakyReLU`` layer 0.3.

    weight_decay : float, default=0.004
        Decoupled weight decay of ``solver='adamw'`` (Keras 3's AdamW and its
        default): before each Adam step every parameter is shrunk,
        ``theta -= learning_rate * weight_decay * theta``, apart from the
        gradient (unlike ``penalty='l2'``, whose gradient Adam rescales). As
        Keras, which excludes no variable by default, it applies to all
        trained parameters: kernels, biases and BatchNorm's gamma and beta
        (not the moving statistics). Ignored by the other solvers; the
        ``alpha`` penalty still applies on top.

    frozen_layers : int, default=0
        Number of leading Dense layers that training leaves unchanged, as
        Keras's ``layer.trainable = False`` (transfer learning, "Reusing
        Pretrained Layers" of the chapter): their kernels and biases, and the
        BatchNorm of those layers (and the input BatchNorm), keep their values
        bit for bit, and their optimizer state is not updated. A frozen
        BatchNorm runs in inference mode during training too (it normalizes
        with its moving mean and variance and does not update them), as Keras
        does for a non-trainable BatchNormalization. The backward pass stops
        at the lowest trainable layer, so a step costs less. Must be smaller
        than the number of Dense layers (``len(hidden_layer_sizes) + 1``):
        the output layer is always trained. The penalty (``alpha``) and
        ``max_norm`` skip frozen kernels, and ``loss_`` leaves their penalty
        out (a constant; Keras's loss counts only trainable weights'
        regularization). Works with every solver (lbfgs optimizes the
        trainable parameters only), ``partial_fit`` and ``warm_start``:
        unfreeze with ``set_params(frozen_layers=0, learning_rate_init=...)``
        and fit again with ``warm_start=True``.

    initial_layers : dict, estimator or None, default=None
        Start a fresh fit from another model's lower layers: the value of
        :func:`fastnn.reuse_layers` (plain arrays: the first hidden layers'
        kernels, biases, activations and BatchNorm arrays), or a fitted
        fastnn or scikit-learn MLP wrapped in
        ``sklearn.frozen.FrozenEstimator`` (all its hidden layers are reused;
        ``clone`` and ``GridSearchCV`` keep it fitted, while a bare fitted
        estimator would be cloned unfitted). The first hidden layers of this
        model must have the source's sizes, activations and BatchNorm
        placement and X its number of features; the other layers, including
        the output layer, are initialized as usual. Used only when a fit
        starts from scratch (not by ``warm_start`` or ``partial_fit``
        continuing a fitted model).

    monitor : {'val_score', 'val_loss'}, default='val_score'
        What early stopping, ``restore_best_weights`` and the plateau
        schedule (``learning_rate='plateau'`` or ``ReduceOnPlateau``) watch
        on the validation data. 'val_score' is scikit-learn's rule on the
        validation score (accuracy or R^2): an epoch improves when its score
        is at least ``best + tol``; stop after more than
        ``n_iter_no_change`` epochs without improvement; keep the epoch of
        the highest score. 'val_loss' is Keras's ``EarlyStopping`` default
        on the validation data loss: ``EarlyStopping(monitor='val_loss',
        min_delta=tol, patience=n_iter_no_change,
        restore_best_weights=restore_best_weights)``, i.e. an epoch improves
        when ``val_loss < best - tol``, and only then does ``best`` (and the
        kept weights) move; stop after ``n_iter_no_change`` epochs without
        improvement. The plateau schedule gets the validation loss, or with
        'val_score' the negated score (so its ``min_delta`` is a score
        margin). Without validation data (no early stopping, no ``X_val``)
        everything watches the training loss, and the choice has no effect.
"""

_ATTRIBUTES_DOC = """
    loss_ : float
        The current loss (mean data loss of the last epoch plus the penalty).

    best_loss_ : float or None
        Minimum training loss (None with early stopping).

    loss_curve_ : list of float
        Loss of every epoch (stochastic solvers).

    validation_scores_ : list of float or None
        Validation score of every epoch when validating (early stopping or
        fit's ``X_val``), else None.

    best_validation_score_ : float or None
        Highest validation score when validating (with
        ``monitor='val_loss'`` the kept weights are those of the best
        validation loss instead), else None.

    t_ : int
        Number of training samples seen.

    coefs_ : list of ndarray of shape (fan_in, fan_out)
        Dense kernels, as sklearn.

    intercepts_ : list of ndarray of shape (fan_out,)
        Dense biases (zeros, not trained, for hidden layers with
        ``batch_norm='before'``).

    bn_gamma_, bn_beta_, bn_moving_mean_, bn_moving_var_ : list
        One entry per BatchNorm slot, ``len(hidden_layer_sizes) + 1`` in
        all: index 0 is the input BN (``batch_norm_input``), index i >= 1
        the BN of hidden layer i; ``None`` where there is none.

    history_ : dict of lists
        Per epoch: 'loss', 'lr' (the last step's rate), 'grad_norm' (one L2
        norm per Dense kernel gradient, averaged over the epoch's steps,
        before clipping), 'time' (seconds); when validating (early stopping
        or fit's ``X_val``) also 'val_loss' (data loss on the validation
        set) and 'val_score'.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (string column names only).

    n_iter_ : int
        Epochs (or lbfgs iterations) run by the last fit.

    n_layers_ : int
        Number of layers, inputs and outputs included.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Output activation.
"""

_CALLBACKS_DOC = """
    Notes
    -----
    Callbacks: scikit-learn's callback API (:mod:`sklearn.callback`,
    scikit-learn >= 1.9) works as for ``LogisticRegression``:
    ``set_callbacks(ScoringMonitor(...), ProgressBar(), ...)`` here, or on a
    ``Pipeline`` or search holding this estimator. ``fit`` is a task whose
    subtasks are its epochs (``solver='lbfgs'``: its L-BFGS iterations);
    ``partial_fit`` a task with one epoch. Each subtask's end reports the
    model after it (``fitted_estimator``, the same model as a fresh fit of
    that many epochs), so ``ScoringMonitor`` scores every epoch; a hook
    returning True stops the fit there, as early stopping would. See the
    user guide's page on callbacks.
"""


def _stochastic(est):
    if est.solver not in STOCHASTIC_SOLVERS:
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{est.solver} is not stochastic.")
    return True


_CLASS_WEIGHT_DOC = """
    class_weight : dict, list of dict, 'balanced' or None, default=None
        Weights of the classes, as in scikit-learn's linear models and trees:
        fitting equals fitting with ``sample_weight`` multiplied by
        ``sklearn.utils.class_weight.compute_sample_weight(class_weight, y)``.
        'balanced' weighs classes inversely to their frequency in y; a dict
        maps labels to weights (missing labels weigh 1); multilabel targets
        take a list of dicts, one per output. With ``partial_fit`` a dict
        applies to every call; 'balanced' is refused there (each call would
        weigh by its own batch's frequencies): compute the weights once with
        ``compute_class_weight('balanced', classes=classes, y=y)`` and pass
        them as a dict.
"""


class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):
    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 rho=0.9, initial_accumulator_value=0.1, kernel_initializer="auto",
                 batch_norm=False, batch_norm_input=False, batch_norm_momentum=0.99,
                 batch_norm_epsilon=1e-3, clipvalue=None, clipnorm=None, global_clipnorm=None,
                 penalty="l2", l1_ratio=0.15, dropout=0.0, dropout_kind="auto", max_norm=None,
                 restore_best_weights=True, dtype=None, class_weight=None,
                 negative_slope=0.01, weight_decay=0.004, frozen_layers=0,
                 initial_layers=None, monitor="val_score"):
        self.class_weight = class_weight
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss="log_loss", shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, rho=rho,
            initial_accumulator_value=initial_accumulator_value,
            kernel_initializer=kernel_initializer, batch_norm=batch_norm,
            batch_norm_input=batch_norm_input, batch_norm_momentum=batch_norm_momentum,
            batch_norm_epsilon=batch_norm_epsilon, clipvalue=clipvalue, clipnorm=clipnorm,
            global_clipnorm=global_clipnorm, penalty=penalty, l1_ratio=l1_ratio,
            dropout=dropout, dropout_kind=dropout_kind, max_norm=max_norm,
            restore_best_weights=restore_best_weights, dtype=dtype,
            negative_slope=negative_slope, weight_decay=weight_decay,
            frozen_layers=frozen_layers, initial_layers=initial_layers,
            monitor=monitor)

    _score_function = staticmethod(accuracy_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # Same cases as sklearn: (re)define classes_ on a fresh fit, else check
        # that y's classes fit the previous ones.
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same "
                                     "classes as in the previous call to fit. Previously "
                                     f"got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. "
                                 f"`self.classes_` has {self.classes_}. 'y' has {classes}.")
        return X, self._one_hot(y)

    def _one_hot(self, y):
        """The label binarizer's indicator matrix of y, as bool.  Multiclass
        labels (all among classes_, which the callers check) are compared with
        classes_ directly: LabelBinarizer.transform builds a sparse matrix
        first, 7-20 ms for 60,000 labels against 1-2 ms."""
        lb = self._label_binarizer
        if lb.y_type_ == "multiclass" and y.ndim == 1:
            return y.reshape(-1, 1) == lb.classes_
        return lb.transform(y).astype(bool)

    def _validate_val_input(self, X_val, y_val):
        """X_val checked as X; y_val as y, with labels among y's classes
        (classes_) and multilabel exactly when y is."""
        X_val, y_val = self._validate_val_arrays(X_val, y_val, accept_sparse="csr", dtype=None)
        multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        if type_of_target(y_val).startswith("multilabel") != multilabel:
            raise ValueError("y_val must be a multilabel indicator matrix, as y is."
                             if multilabel else
                             "y_val must hold class labels, as y does, not a multilabel "
                             "indicator matrix.")
        if multilabel:
            if y_val.shape[1] != len(self.classes_):
                raise ValueError(f"y_val has {y_val.shape[1]} labels (columns) but y has "
                                 f"{len(self.classes_)}.")
        else:
            unseen = set(unique_labels(y_val)) - set(self.classes_)
            if unseen:
                raise ValueError(f"y_val has classes not in y: {np.array(sorted(unseen))}. The "
                                 f"classes of y (classes_) are {self.classes_}.")
        return X_val, self._one_hot(y_val)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (float32 input trains in float32).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (multilabel: an indicator matrix).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), default=None
            Validation data, as scikit-learn's HistGradientBoostingClassifier:
            checked as X (features, finiteness; at least 2 samples) and
            validated after every epoch instead of a ``validation_fraction``
            split (the training data is not split). See ``early_stopping``
            and ``monitor``. Stochastic solvers only. In a Pipeline,
            ``Pipeline(..., transform_input=["X_val"])`` transforms it as X.
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            Labels of X_val, among those of y (multilabel when y is);
            required with X_val.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation samples, used as given (``class_weight``
            does not apply to them, as HistGradientBoostingClassifier).

        Returns
        -------
        self : object
        """
        sample_weight = self._class_weighted(y, sample_weight, incremental=False)
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, X_val=X_val,
                         y_val=y_val, sample_weight_val=sample_weight_val)

    def _class_weighted(self, y, sample_weight, incremental):
        """sample_weight times compute_sample_weight(class_weight, y)."""
        if self.class_weight is None:
            return sample_weight
        if incremental and isinstance(self.class_weight, str):
            raise ValueError("class_weight='balanced' is not supported by partial_fit: each "
                             "call would weigh by its own batch's class frequencies. Compute "
                             "the weights once with sklearn.utils.class_weight."
                             "compute_class_weight('balanced', classes=classes, y=y) and pass "
                             "them as a dict.")
        weights = compute_sample_weight(self.class_weight, y)
        if sample_weight is None:
            return weights
        given = np.asarray(sample_weight, dtype=np.float64)
        if given.ndim and given.shape != weights.shape:
            return sample_weight  # _fit rejects the length with scikit-learn's message
        return given * weights

    @available_if(_stochastic)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Update the model with one epoch over the given data.

        It takes no validation data: a call is one epoch without early
        stopping (as scikit-learn, which refuses ``early_stopping=True``
        here); score held-out data between calls instead.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array of shape (n_classes,), default=None
            All classes across calls; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        def set_classes():  # part of the call, undone if it fails
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)

        sample_weight = self._class_weighted(y, sample_weight, incremental=True)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True,
                         setup=set_classes)

    def _output_to_prediction(self, out):
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def predict(self, X):
        """Predict classes.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        _check_fitted(self)
        return self._output_to_prediction(self._forward(X, check_input=True))

    def predict_proba(self, X, mc_samples=0, return_std=False):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        mc_samples : int, default=0
            When > 0, Monte-Carlo dropout: the mean of this many stochastic
            passes with dropout on (BatchNorm in inference mode).
        return_std : bool, default=False
            Also return the standard deviation of the MC passes (zeros when
            mc_samples is 0).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        std : ndarray of shape (n_samples, n_classes), only with return_std
        """
        _check_fitted(self)
        res = self._forward(X, mc_samples=mc_samples, return_std=return_std,
                            check_input=True)
        mean, std = res if return_std else (res, None)
        if self.n_outputs_ == 1:
            mean = mean.ravel()
            mean = np.vstack([1 - mean, mean]).T
            if std is not None:
                std = std.ravel()
                std = np.vstack([std, std]).T
        return (mean, std) if return_std else mean

    def predict_log_proba(self, X):
        """Log of probability estimates (``log(predict_proba(X))``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 rho=0.9, initial_accumulator_value=0.1, kernel_initializer="auto",
                 batch_norm=False, batch_norm_input=False, batch_norm_momentum=0.99,
                 batch_norm_epsilon=1e-3, clipvalue=None, clipnorm=None, global_clipnorm=None,
                 penalty="l2", l1_ratio=0.15, dropout=0.0, dropout_kind="auto", max_norm=None,
                 restore_best_weights=True, dtype=None, negative_slope=0.01,
                 weight_decay=0.004, frozen_layers=0, initial_layers=None, monitor="val_score"):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss=loss, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, rho=rho,
            initial_accumulator_value=initial_accumulator_value,
            kernel_initializer=kernel_initializer, batch_norm=batch_norm,
            batch_norm_input=batch_norm_input, batch_norm_momentum=batch_norm_momentum,
            batch_norm_epsilon=batch_norm_epsilon, clipvalue=clipvalue, clipnorm=clipnorm,
            global_clipnorm=global_clipnorm, penalty=penalty, l1_ratio=l1_ratio,
            dropout=dropout, dropout_kind=dropout_kind, max_norm=max_norm,
            restore_best_weights=restore_best_weights, dtype=dtype,
            negative_slope=negative_slope, weight_decay=weight_decay,
            frozen_layers=frozen_layers, initial_layers=initial_layers,
            monitor=monitor)

    _score_function = staticmethod(r2_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' requires non-negative y.")
        return X, y

    def _validate_val_input(self, X_val, y_val):
        """X_val checked as X, y_val as y."""
        X_val, y_val = self._validate_val_arrays(X_val, y_val, dtype="numeric")
        if self.loss == "poisson" and np.any(y_val < 0):
            raise ValueError("loss='poisson' requires non-negative y_val.")
        return X_val, y_val

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (float32 input trains in float32).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), default=None
            Validation data, as scikit-learn's HistGradientBoostingRegressor:
            checked as X (features, finiteness; at least 2 samples) and
            validated after every epoch instead of a ``validation_fraction``
            split (the training data is not split). See ``early_stopping``
            and ``monitor``. Stochastic solvers only. In a Pipeline,
            ``Pipeline(..., transform_input=["X_val"])`` transforms it as X.
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            Targets of X_val, as many outputs as y; required with X_val.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation samples.

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, X_val=X_val,
                         y_val=y_val, sample_weight_val=sample_weight_val)

    @available_if(_stochastic)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data.

        It takes no validation data: a call is one epoch without early
        stopping (as scikit-learn, which refuses ``early_stopping=True``
        here); score held-out data between calls instead.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _output_to_prediction(self, out):
        return out.ravel() if out.shape[1] == 1 else out

    def predict(self, X, return_std=False, mc_samples=0):
        """Predict with the multilayer perceptron.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the standard deviation of the MC-dropout passes
            (zeros when mc_samples is 0).
        mc_samples : int, default=0
            When > 0, Monte-Carlo dropout: the mean of this many stochastic
            passes with dropout on (BatchNorm in inference mode).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        std : ndarray of the same shape, only with return_std
        """
        _check_fitted(self)
        res = self._forward(X, mc_samples=mc_samples, return_std=return_std,
                            check_input=True)
        if return_std:
            return self._output_to_prediction(res[0]), self._output_to_prediction(res[1])
        return self._output_to_prediction(res)


MLPClassifier.__doc__ = f"""Multilayer perceptron classifier trained in C.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier` (same
    parameters, defaults, methods and fitted attributes) that adds the
    techniques of "Training Deep Neural Networks" (Géron, ch. 11) as
    constructor parameters. It minimizes the log-loss (softmax for
    multiclass, logistic for binary and multilabel targets).

    Parameters
    ----------{_PARAMETERS_DOC}{_CLASS_WEIGHT_DOC}
    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.
{_ATTRIBUTES_DOC}{_CALLBACKS_DOC}
    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from fastnn import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(64,), batch_norm=True, solver="nadam",
    ...                     max_iter=20, random_state=0).fit(X / 16, y)
    >>> clf.score(X / 16, y) > 0.9
    True
    """

MLPRegressor.__doc__ = f"""Multilayer perceptron regressor trained in C.

    A drop-in for :class:`sklearn.neural_network.MLPRegressor` (same
    parameters, defaults, methods and fitted attributes) that adds the
    techniques of "Training Deep Neural Networks" (Géron, ch. 11) as
    constructor parameters.

    Parameters
    ----------
    loss : {{'squared_error', 'poisson'}}, default='squared_error'
        Half squared error (identity output) or half Poisson deviance (log
        link: exponential output, y >= 0), as sklearn.
{_PARAMETERS_DOC}
    Attributes
    ----------
{_ATTRIBUTES_DOC}{_CALLBACKS_DOC}
    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fastnn import MLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=500,
    ...                    random_state=0).fit(StandardScaler().fit_transform(X), y)
    >>> reg.n_layers_
    3
    """
