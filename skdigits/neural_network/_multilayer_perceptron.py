"""MLPClassifier: a multilayer perceptron trained in Numba kernels."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.sparse import issparse
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _fitted
from .._base import BaseMinibatchClassifier
from .._engine._models import KernelData, MLPModel, readonly
from .._engine._team import interrupts_deferred
from .._kernels._losses import LOGISTIC, SOFTMAX
from .._kernels._mlp import ACTIVATIONS
from .._kernels._stats import column_moments, sparse_column_moments
from .._logging import caller_stacklevel

_DTYPES = {"float32": np.float32, "float64": np.float64}


def _dtype_name(dtype):
    """``"float32"``, ``"float64"`` or None for a ``dtype`` parameter given as
    a name, a NumPy type or a NumPy dtype (as scikit-learn's ``dtype``
    parameters take them); ValueError for any other."""
    if dtype is None or isinstance(dtype, str) and dtype in _DTYPES:
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _DTYPES:
        raise ValueError(
            f"dtype must be 'float32', 'float64' (or np.float32, np.float64) or "
            f"None; got {dtype!r}.")
    return name
#: ``standardize``: each feature's scale is its standard deviation plus this
#: fraction of the largest one.
STANDARDIZE_FLOOR = 0.25


class MLPClassifier(BaseMinibatchClassifier):
    """Multilayer perceptron classifier trained with Numba-compiled epochs.

    The network is trained by minibatch Adam or SGD, every epoch running in
    kernels compiled by Numba (or full-batch by L-BFGS, see ``solver``).

    A drop-in for :class:`sklearn.neural_network.MLPClassifier` (same
    parameter names and fitted attributes) that also records the loss of each
    class per epoch, the training accuracy and, with ``early_stopping``, the
    validation loss; it takes ``sample_weight`` and ``class_weight``, offers
    cosine and step learning-rate schedules, calls ``callbacks`` after each
    epoch, and restores the best validation weights when early stopping ends
    training.

    The defaults train full MNIST (pixels scaled to [0, 1]) to 0.9847-0.9853
    test accuracy and Fashion-MNIST to 0.9044-0.9060 (seeds 0-4; the
    published figures are listed on the Benchmarks page of the
    documentation): one hidden layer of 512 ReLU units, Adam with a
    cosine-annealed learning rate over 12 epochs of MNIST, float32.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(512,)
        Units of each hidden layer; ``(512, 256)`` gives two hidden layers.
        Each must be a positive integer; at least one layer. scikit-learn's
        default is ``(100,)``.
    activation : {"relu", "leaky_relu", "tanh", "logistic", "identity"}, \
            default="relu"
        Activation of the hidden layers. ``"leaky_relu"`` is
        ``max(x, 0.01 * x)``.
    solver : {"adam", "sgd", "lbfgs"}, default="adam"
        ``"adam"`` or ``"sgd"`` (with ``momentum``, optionally Nesterov's)
        train on minibatches. ``"lbfgs"`` minimises scikit-learn's full-batch
        objective (the weighted mean loss plus ``alpha / (2 * sum of the
        sample weights) * ||W||^2``) with scipy's L-BFGS-B, the loss and
        gradient of all rows coming from the kernels in blocks of rows; it
        suits small data, as in scikit-learn. With ``"lbfgs"``, ``max_iter``
        counts iterations and ``max_fun`` evaluations, every curve has one
        entry per iteration, ``early_stopping`` and the minibatch parameters
        are ignored and there is no ``partial_fit``.
    alpha : float, default=1e-3
        Strength of the L2 penalty on the weights (not the intercepts), with
        scikit-learn's scaling: each minibatch adds ``alpha / batch_size * W``
        to the gradient.
    batch_size : int or "auto", default=128
        Samples per minibatch (at most the number of training samples).
        ``"auto"`` means 200, as in scikit-learn.
    learning_rate : {"cosine", "onecycle", "constant", "invscaling", "adaptive", \
            "step"}, default="cosine"
        Schedule of the step size. ``"cosine"`` anneals ``learning_rate_init``
        to zero over ``max_iter`` epochs (smoothly, batch by batch).
        ``"onecycle"`` rises linearly from zero to ``learning_rate_init`` over
        the first ``warmup_fraction`` of the ``max_iter`` epochs, then falls
        linearly to zero. ``"constant"`` keeps it. ``"invscaling"`` uses
        ``learning_rate_init / (epoch + 1) ** power_t``. ``"adaptive"`` (sgd
        only) divides it by 5 each time the loss stops improving (see
        ``tol``). ``"step"`` multiplies it by ``lr_gamma`` every
        ``lr_step_size`` epochs. ``partial_fit`` uses ``learning_rate_init``
        for ``"cosine"`` and ``"onecycle"``. (scikit-learn's default is ``"constant"``.)
    learning_rate_init : float, default=4e-3
        Initial step size.
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.
    max_iter : int or "auto", default="auto"
        Maximum number of epochs (iterations for ``"lbfgs"``). ``"auto"``
        aims at about 5600 minibatch updates: 12 epochs on MNIST with the
        default batch size, more on small data (at least 5, at most 200); 200
        iterations for ``"lbfgs"``. Reaching an explicit ``max_iter`` warns
        (``ConvergenceWarning``) unless the schedule (``"cosine"``,
        ``"onecycle"``) is planned to end there; ``"lbfgs"`` warns whenever it
        stops before converging, as in scikit-learn.
    shuffle : bool, default=True
        Shuffle the samples before each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the shuffling, the validation split and
        the masks of ``dropout``. Pass an int for reproducible results.
    tol : float, default=1e-4
        Training stops when the loss (or the validation score, with
        ``early_stopping``) has not improved by ``tol`` for
        ``n_iter_no_change`` consecutive epochs.
    verbose : int, default=0
        ``1`` logs one line per epoch through :mod:`logging` (a stderr handler
        is attached when the application configured none); ``2`` also shows a
        progress bar.
    warm_start : bool, default=False
        Continue from the weights of the previous ``fit`` (new optimizer state
        and schedule) for ``max_iter`` more epochs; the curves keep
        accumulating, ``n_iter_`` counts this call's epochs (as in
        scikit-learn). The layer sizes must not change.
    momentum : float, default=0.9
        Momentum of ``"sgd"``.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with ``"sgd"``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified),
        record its loss and accuracy every epoch, stop when the accuracy (or
        what ``scoring`` names) stops improving and keep the weights of the
        best epoch. ``best_loss_`` is
        then None (the validation score plays its role). ``partial_fit``
        raises ``ValueError`` when it is set, as in scikit-learn; ``"lbfgs"``
        ignores it. A split that cannot be stratified (a class with one
        sample) is drawn at random, with a warning (scikit-learn raises).
    scoring : str, callable or None, default=None
        What early stopping watches on the validation split (named as in
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier`; ignored
        without ``early_stopping``). ``None``: the accuracy (weighted by the
        sample and class weights), as in scikit-learn's MLP. ``"loss"``: the
        plain cross-entropy (for multi-label targets, the mean binary
        cross-entropy per label), measured in the same pass, so
        ``validation_scores_`` holds the negative validation loss and the
        weights kept are those of the lowest loss. A scorer name
        (``sklearn.metrics.get_scorer_names()``, e.g. ``"f1_macro"``,
        ``"balanced_accuracy"``, ``"neg_log_loss"``) or a callable
        ``scorer(estimator, X_val, y_val)``: called after each epoch on the
        estimator holding that epoch's model (with ``sample_weight=`` when the
        fit has sample or class weights), at the cost of one prediction pass
        over the validation split. Higher is better; an epoch improves on
        the best when its score exceeds it by at least ``tol``. A warm start
        with another ``scoring`` sets the earlier scores to NaN.
    validation_fraction : float, default=0.1
        Share of the training data held out with ``early_stopping``.
    beta_1 : float, default=0.9
        Decay of Adam's first-moment estimate.
    beta_2 : float, default=0.999
        Decay of Adam's second-moment estimate.
    epsilon : float, default=1e-8
        Adam's numerical-stability term.
    n_iter_no_change : int or np.inf, default=10
        Epochs without improvement of at least ``tol`` before stopping;
        ``np.inf`` switches the rule off (``tol`` is then the gradient
        tolerance of ``"lbfgs"`` only).
    max_fun : int, default=15000
        Most loss-and-gradient evaluations of ``"lbfgs"`` (ignored by the
        other solvers).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, multiplied into ``sample_weight``.
        ``"balanced"`` uses ``n_samples / (n_classes * np.bincount(y))``.
    dtype : {"float32", "float64"}, np.float32, np.float64 or None, \
            default="float32"
        Precision of the weights and of all training arithmetic. float32 is
        about twice as fast and half the memory; float64 input is not copied,
        each minibatch is cast as it is gathered. ``None`` trains in the
        input's precision (float32 or float64), as scikit-learn does.
    standardize : bool or "auto", default="auto"
        ``"auto"``: standardise dense inputs and leave sparse ones as they
        are (on sparse bag-of-words features the per-feature scale blows rare
        columns up: 0.83 test accuracy against 0.99 unscaled in
        ``benchmarks/bench_sparse.py``). ``True``: always, ``False``: never.
        Standardised inputs: each feature centred on its mean over
        the training rows (weighted as the loss weighs them; the validation
        split left out) and divided by its standard deviation plus a quarter
        of the largest one, so that a nearly constant feature, such as a
        border pixel, is not blown up. When every feature is constant on
        those rows (identical rows, or all the weight on one sample), there
        is no spread to divide by: the inputs are only centred, with a
        warning. That floor is made for features in one
        unit, like pixels: for features in different units, put a
        ``StandardScaler`` in front (every feature then gets the same
        scale). The statistics come from the first ``fit`` (or
        ``partial_fit``) call and stay with the model through warm starts;
        the kernels apply them on the fly without copying the data, and
        still skip zero pixels. ``coefs_`` and ``intercepts_`` act on the raw
        inputs, so predictions need nothing else. On full Fashion-MNIST it
        lifts the defaults from 0.8921-0.8956 test accuracy
        (``standardize=False``) to 0.9044-0.9060 (seeds 0-4).
    lr_step_size : int, default=10
        Epochs between two decays of the ``"step"`` schedule.
    lr_gamma : float, default=0.1
        Factor of each decay of the ``"step"`` schedule, in (0, 1].
    warmup_fraction : float, default=0.2
        Share of the ``max_iter`` epochs that the ``"onecycle"`` schedule
        spends rising, in [0, 1).
    label_smoothing : float, default=0.2
        In [0, 1): train against the targets ``(1 - label_smoothing)`` times
        the one-hot labels plus ``label_smoothing / n_classes`` (plus
        ``label_smoothing / 2`` for each logistic output). ``loss_curve_`` is
        this smoothed objective; the per-class curves and the validation
        curves stay the plain cross-entropy, so they compare across settings.
    dropout : float, default=0.0
        In [0, 1): during training, each hidden unit's activation is dropped
        (set to zero) with this probability, row by row, and kept ones are
        scaled by ``1 / (1 - dropout)`` ("inverted" dropout), in every
        hidden layer. ``predict``, ``predict_proba`` and the validation
        figures of ``early_stopping`` never drop; ``loss_curve_`` and the
        training accuracy are measured on the dropped network. The masks
        depend on ``random_state``, the epoch (counted over ``partial_fit``
        calls and warm starts) and the row, never on ``n_jobs``, the
        minibatches or dense against sparse input. ``"adam"`` and ``"sgd"``
        only: ``"lbfgs"`` refuses it. The default stays 0 by measurement:
        with the other defaults, 0.1 to 0.3 gave the same or lower test
        accuracy on full MNIST and Fashion-MNIST, even over 20 epochs
        (``benchmarks/study_recipes.py``).
    callbacks : callable, list of callables or None, default=None
        Called after each epoch as ``callback(estimator, info)``, where
        ``info`` is a dict with ``epoch``, ``loss``, ``accuracy``, ``lr``,
        ``time`` (seconds of training in the epoch) and ``loss_per_class``,
        plus ``val_loss``, ``val_accuracy`` and ``val_loss_per_class`` with
        ``early_stopping`` (and ``val_score``, the score early stopping
        watches, when ``scoring`` is set). A callback that returns True stops
        training after this epoch (the estimator stays usable). Exceptions propagate.

    n_jobs : int or None, default=None
        Threads of the training and prediction kernels. ``None``: the cores
        this process may use, within ``OMP_NUM_THREADS``, a
        ``threadpoolctl.threadpool_limits`` block and a joblib worker's
        share, less the cores other processes keep busy; ``-1``: all cores;
        ``k``: ``k`` threads. Fits running at the same time in one process
        share the cores. Unlike scikit-learn's ``n_jobs`` (joblib
        processes), this counts threads inside one fit, as in umap-learn.
        The results do not depend on it.

    Attributes
    ----------
    coefs_ : list of ndarray
        Weights of each layer; ``coefs_[i]`` has shape
        ``(n_units[i], n_units[i + 1])``.
    intercepts_ : list of ndarray
        Intercepts of each layer; ``intercepts_[i]`` has shape
        ``(n_units[i + 1],)``.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    input_mean_, input_scale_ : ndarray of shape (n_features,) or None
        With ``standardize``: the mean and the scale each feature is
        standardised with (None otherwise). Already folded into ``coefs_[0]``
        and ``intercepts_[0]``.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Output units: ``n_classes``, 1 for a binary problem, the number of
        labels for multi-label targets.
    out_activation_ : str
        ``"softmax"``, or ``"logistic"`` for a binary problem and for
        multi-label targets (one binary cross-entropy per label).
    loss_ : float
        Training loss of the last epoch (iteration for ``"lbfgs"``).
    best_loss_ : float or None
        Lowest value of ``loss_curve_``; None with ``early_stopping``, as in
        scikit-learn.
    loss_curve_ : list of float
        The objective minimised, epoch by epoch: the mean training loss
        (with ``label_smoothing``, against the smoothed targets) as the
        running mean over the epoch's minibatches, each measured before its
        update, plus the L2 penalty
        ``alpha / (2 * batch_size) * ||W||^2`` of the weights at the end of
        the epoch (scikit-learn adds each minibatch's penalty as it goes, so
        its figure differs slightly for a large ``alpha``).
    loss_curve_per_class_ : ndarray of shape (n_epochs, n_classes)
        Mean plain cross-entropy of each class's samples in each epoch (no
        penalty, no label smoothing: comparable across settings); NaN for a
        class absent from an epoch's data. For multi-label targets, column
        ``j`` is label ``j``'s binary cross-entropy over all samples. One row
        per epoch of every call (``len(loss_curve_)`` rows).
    accuracy_curve_ : list of float
        Training accuracy of each epoch (same running measurement as the loss).
    validation_scores_ : list of float or None
        Validation score of each epoch, with ``early_stopping``: the accuracy,
        or what ``scoring`` names (the negative loss for ``"loss"``).
    best_validation_score_ : float or None
        Best of ``validation_scores_``, with ``early_stopping``; the weights
        kept are that epoch's.
    validation_loss_curve_ : list of float
        Validation loss of each epoch, with ``early_stopping`` only: the plain
        cross-entropy (no L2 penalty, no label smoothing), comparable across
        settings.
    validation_loss_curve_per_class_ : ndarray of shape (n_epochs, n_classes)
        Validation loss of each class, with ``early_stopping`` only.
    n_iter_ : int
        Epochs (``"lbfgs"``: iterations) run by the last ``fit`` call, as in
        scikit-learn; 1 after ``partial_fit``. The curves keep every epoch.
    t_ : int
        Training samples seen.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : The reference implementation.
    skdigits.SoftmaxRegression : The linear model with the same training loop.

    Notes
    -----
    Each epoch runs in one compiled call, on ``n_jobs`` threads: gathering
    minibatches, the forward pass (skdigits' own vector products, which skip
    columns that are zero in a whole group of rows; bias and activation
    fused), softmax cross-entropy with per-class accumulators, the backward
    pass and the optimizer update. Buffers are allocated once per fit. The
    result does not depend on the number of threads. Prediction runs in
    float64, in blocks of rows.

    Sparse ``X`` (CSR or CSC, matrices or arrays) is never made dense: the
    first layer reads each row's stored entries, so memory stays in
    proportion to the non-zeros (a CSC input is converted to CSR once).
    Multi-label ``y`` (an indicator matrix) trains one logistic output per
    label; ``predict`` then returns the indicator matrix.

    Examples
    --------
    >>> from skdigits import MLPClassifier
    >>> from skdigits.datasets import load_mnist
    >>> X, y = load_mnist(sample=True, return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=20,
    ...                     random_state=0).fit(X / 255.0, y)
    >>> clf.loss_curve_per_class_.shape
    (20, 10)
    >>> clf.score(X / 255.0, y) > 0.95
    True
    """

    _parameter_constraints: dict = {
        **BaseMinibatchClassifier._parameter_constraints,
        # the values are checked by _hidden_sizes, with a clearer message
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None,
                                                      closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        # a name, np.float32/np.float64 or their dtypes (_dtype_name checks)
        "dtype": [StrOptions(set(_DTYPES)), type, np.dtype, None],
        "standardize": ["boolean", StrOptions({"auto"})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    _has_loss_attribute = True
    _auto_updates = 5600
    _auto_min_epochs = 5
    _auto_max_epochs = 200

    def __init__(
        self,
        hidden_layer_sizes=(512,),
        activation="relu",
        *,
        solver="adam",
        alpha=1e-3,
        batch_size=128,
        learning_rate="cosine",
        learning_rate_init=4e-3,
        power_t=0.5,
        max_iter="auto",
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=0,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        scoring=None,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        class_weight=None,
        dtype="float32",
        standardize="auto",
        lr_step_size=10,
        lr_gamma=0.1,
        warmup_fraction=0.2,
        label_smoothing=0.2,
        dropout=0.0,
        callbacks=None,
        n_jobs=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.scoring = scoring
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.class_weight = class_weight
        self.dtype = dtype
        self.standardize = standardize
        self.lr_step_size = lr_step_size
        self.lr_gamma = lr_gamma
        self.warmup_fraction = warmup_fraction
        self.label_smoothing = label_smoothing
        self.dropout = dropout
        self.callbacks = callbacks
        self.n_jobs = n_jobs

    # -- parameters --------------------------------------------------------
    def _hidden_sizes(self):
        """``hidden_layer_sizes`` as a list of positive ints (or ValueError)."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, (Integral, np.integer)) and not isinstance(sizes, bool):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            sizes = None
        ok = bool(sizes) and all(
            isinstance(s, (Integral, np.integer)) and not isinstance(s, bool)
            and s > 0 for s in sizes)
        if not ok:
            raise ValueError(
                "hidden_layer_sizes must be a non-empty sequence of positive "
                f"integers, e.g. (256,) or (256, 128); got "
                f"{self.hidden_layer_sizes!r}.")
        return [int(s) for s in sizes]

    def _more_validate_params(self):
        super()._more_validate_params()
        self._hidden_sizes()
        _dtype_name(self.dtype)
        if self.solver == "lbfgs" and self.dropout > 0:
            raise ValueError(
                f"dropout={self.dropout} needs a minibatch solver: solver='lbfgs' "
                "minimises a deterministic objective; use solver='adam' or 'sgd', "
                "or dropout=0.0.")

    def _model_dtype(self, X):
        name = _dtype_name(self.dtype)
        return X.dtype if name is None else _DTYPES[name]

    def _fit_dtypes(self):
        # float input is never copied (minibatches are cast as they are
        # gathered); anything else is converted once, to the model's dtype
        if _dtype_name(self.dtype) == "float32":
            return (np.float32, np.float64)
        return (np.float64, np.float32)

    # -- model hooks -------------------------------------------------------
    def _output_layout(self, n_classes):
        if self._multilabel:  # one logistic output per label
            return n_classes, LOGISTIC
        if n_classes == 2:
            return 1, LOGISTIC
        return n_classes, SOFTMAX

    def _layer_sizes(self, n_features, n_outputs):
        return np.array([n_features, *self._hidden_sizes(), n_outputs],
                        dtype=np.int64)

    def _model(self, n_features=None, n_outputs=None, loss=None):
        # before the first fit's statistics are known, the model is only
        # sized and initialised (see _fit_input_statistics)
        mean = self.__dict__.get("input_mean_")
        scale = self.__dict__.get("input_scale_")
        if n_features is None:  # the fitted model
            return MLPModel(self._sizes, ACTIVATIONS[self.activation],
                            self._loss_code, mean, scale)
        return MLPModel(self._layer_sizes(n_features, n_outputs),
                        ACTIVATIONS[self.activation], loss, mean, scale)

    def _check_fitted_structure(self, n_features, n_outputs):
        sizes = _fitted.array_attr(self, "_sizes", getattr(self, "_sizes", None),
                                   ndim=1, dtypes=(np.dtype(np.int64),))
        if len(sizes) < 3:
            _fitted.fail(self, f"_sizes has {len(sizes)} layers, at least 3 needed")
        if sizes.min() < 1 or sizes.max() > _fitted.MAX_UNITS:
            _fitted.fail(self, f"_sizes {sizes.tolist()} holds a size below 1 or "
                                "too large")
        weights = sum(int(a) * int(b) for a, b in zip(sizes[:-1], sizes[1:]))
        if weights > _fitted.MAX_UNITS:
            _fitted.fail(self, f"_sizes {sizes.tolist()} asks for {weights:,} "
                                "weights")
        if int(sizes[0]) != n_features or int(sizes[-1]) != n_outputs:
            _fitted.fail(self, f"the layer sizes {sizes.tolist()} do not match "
                                f"n_features_in_={n_features} and {n_outputs} "
                                "outputs")
        if self.activation not in ACTIVATIONS:
            _fitted.fail(self, f"its activation {self.activation!r} is unknown")
        mean = self.__dict__.get("input_mean_")
        scale = self.__dict__.get("input_scale_")
        if (mean is None) != (scale is None):
            _fitted.fail(self, "only one of input_mean_ and input_scale_ is set")
        if mean is None:
            return
        f64 = (np.dtype(np.float64),)
        _fitted.array_attr(self, "input_mean_", mean, ndim=1, shape=(n_features,),
                           dtypes=f64, finite=True)
        _fitted.array_attr(self, "input_scale_", scale, ndim=1, shape=(n_features,),
                           dtypes=f64, finite=True)
        if not (scale > 0).all():
            _fitted.fail(self, "input_scale_ holds values that are not positive")

    def _fit_input_statistics(self, X, rows, w, dtype):
        # the training rows only (not the validation split), weighted as the
        # loss weighs them
        self.input_mean_ = self.input_scale_ = None
        if not self.standardize or (self.standardize == "auto" and issparse(X)):
            return True
        mean = np.empty(X.shape[1])
        var = np.empty(X.shape[1])
        # the kernels' one type per argument: CSR arrays as int64, int64 and
        # float64 (the stored values exactly; the epochs read them scaled,
        # once the scale is known: see _engine._models.KernelData); dense rows
        # in their own float dtype (read in place, in data.X)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        weights = readonly(np.ascontiguousarray(w, dtype=np.float64))
        with interrupts_deferred():  # kernels outside a team (see Team)
            if issparse(X):  # the stored entries only
                csr = [readonly(np.ascontiguousarray(a, dtype=t)) for a, t in (
                    (X.indptr, np.int64), (X.indices, np.int64),
                    (X.data, np.float64))]
                sparse_column_moments(*csr, rows, weights, mean, var)
                del csr
            else:
                data = KernelData(X, w, np.float32 if X.dtype == np.float32
                                  else np.float64)
                column_moments(data.X, rows, weights, mean, var)
        if not np.isfinite(var).all():  # squares beyond the float64 range
            bad = np.flatnonzero(~np.isfinite(var))
            raise ValueError(
                f"standardize cannot scale X: the variance of feature"
                f"{'s' if len(bad) > 1 else ''} {bad[:5].tolist()}"
                f"{' ...' if len(bad) > 5 else ''} overflows float64 (their "
                "squares pass the largest float, about 1.8e308). Divide X by a "
                "constant first.")
        std = np.sqrt(var)
        # a spread within the rounding of the mean is none: a feature that is
        # constant on the weighted rows (identical rows, all the weight on one
        # sample) has a standard deviation of about 1e-16 * |mean|, and
        # dividing by it blew the inputs and the weights up to 1e15
        n_rows = np.count_nonzero(w[rows])
        noise = 4.0 * n_rows * np.finfo(np.float64).eps * np.abs(mean)
        std[std <= noise] = 0.0
        top = std.max() if std.size else 0.0
        self.input_mean_ = mean
        if top > 0:
            self.input_scale_ = std + STANDARDIZE_FLOOR * top
            return True
        self.input_scale_ = np.ones_like(std)
        if std.size:
            warnings.warn(
                f"Every feature is constant over the {n_rows} training "
                f"row{'s' if n_rows != 1 else ''} with a positive weight (identical "
                "rows, or all the weight on one sample), so standardize has no "
                "spread to divide by: the inputs are only centred.",
                UserWarning, stacklevel=caller_stacklevel())
        return True

    def _init_params(self, model, rng, dtype):
        # Glorot/Xavier uniform for weights and intercepts, as scikit-learn
        # (with its larger bound for the logistic activation)
        self._sizes = model.sizes.copy()
        return model.init_params(rng, dtype, glorot_factor=(
            2.0 if self.activation == "logistic" else 6.0))

    def _describe(self, model):
        return (f"{type(self).__name__} with layer sizes {model.sizes.tolist()} "
                f"({model.n_params:,} parameters)")

    def _check_warm_layout(self, n_features, n_outputs):
        sizes = self._layer_sizes(n_features, n_outputs)
        if not np.array_equal(sizes, self._sizes):
            raise ValueError(
                f"The layer sizes changed from {self._sizes[1:-1].tolist()} to "
                f"{sizes[1:-1].tolist()} since the last fit, so its weights "
                "cannot be continued: set warm_start=False (or call fit instead "
                "of partial_fit) to train a new network.")

    def _l2_full(self, total_weight):
        # scikit-learn's lbfgs: alpha / (2 * sum of the sample weights) * ||W||^2
        return float(self.alpha) / total_weight

    def _l2(self, batch_size):
        # scikit-learn's scaling: alpha / m * W in a minibatch of m rows, and
        # the mean over minibatches of alpha / (2 m) ||W||^2 in the loss (the
        # last, shorter minibatch counted like the others)
        return 0.0, float(self.alpha), 0.5 * float(self.alpha) / batch_size

    def _export(self, weights):
        self.coefs_ = [W for W, _ in weights]
        self.intercepts_ = [b for _, b in weights]
        self.n_layers_ = len(self._sizes)
        self.n_outputs_ = int(self._sizes[-1])
        # getattr: models saved before multi-label targets have no _multilabel
        self.out_activation_ = ("logistic" if self.n_outputs_ == 1
                                or getattr(self, "_multilabel", False)
                                else "softmax")
        if getattr(self, "loss_curve_", None):
            self.loss_ = self.loss_curve_[-1]
