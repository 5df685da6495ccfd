"""scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9) for
fastnn's fits, the way scikit-learn's LogisticRegression supports it.

A ``fit`` (or ``partial_fit``) call is one task. Its subtasks are the epochs
of the stochastic solvers (task name "epoch"; ``partial_fit`` runs one) or
the iterations of L-BFGS (task name "lbfgs-iter"). Each subtask's begin and
end hooks get the data given to the call and can ask for ``fitted_estimator``:
a copy of the estimator whose fitted attributes are the weights at that
moment, so ``ScoringMonitor`` scores the model after every epoch. A
``on_fit_task_end`` hook that returns True stops the fit after that epoch or
iteration, as early stopping would (no ConvergenceWarning).

Without callbacks set, a fit pays one Python call per epoch that returns at
once; the weights are unpacked for a hook only when one asks for them.
"""

try:
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # scikit-learn < 1.9 has no callback API: fits run without one
    class CallbackSupportMixin:
        """Stand-in without ``set_callbacks``."""

# What the callback API keeps on the estimator during a call: never copied
# by the all-or-nothing rollback (a deep copy would detach a ScoringMonitor's
# log and the task tree a meta-estimator links to).
CALLBACK_STATE = ("_skl_callbacks", "_skl_callbacks_to_teardown", "_callback_fit_ctx",
                  "_parent_callback_ctx")


class FitCallbacks:
    """The callback side of one fit or partial_fit call.

    Created at the start of the call: sets the callbacks up (scikit-learn's
    ``_init_callback_context``) and runs the root task's begin hooks. The
    loops then report their epochs (``begin_epoch``/``end_epoch``) or L-BFGS
    iterations (``lbfgs_evaluation``/``lbfgs_callback``); ``end_fit``
    runs the root task's end hooks with the finished model. The teardown is
    scikit-learn's ``_fit_context``'s.
    """

    def __init__(self, estimator, X, y, sample_weight, incremental):
        self.estimator = estimator
        self.stopped = False  # an on_fit_task_end hook asked to stop
        self._task = None  # the running epoch's or iteration's context
        self._root = None
        # Subtasks only when callbacks are set (as LogisticRegression): the
        # root context is made anyway, as it links a meta-estimator's task
        # tree to this fit.
        self.active = hasattr(estimator, "_skl_callbacks")
        if not hasattr(estimator, "_init_callback_context"):
            self.active = False
            return
        if incremental:
            max_subtasks = 1
        elif estimator.solver == "lbfgs":  # + an iteration begun but not accepted
            max_subtasks = estimator.max_iter + 1
        else:
            max_subtasks = estimator.max_iter
        self._root = estimator._init_callback_context(
            task_name="partial_fit" if incremental else "fit", max_subtasks=max_subtasks)
        self._data = {"X": X, "y": y, "metadata": (None if sample_weight is None
                                                   else {"sample_weight": sample_weight})}
        self._root.call_on_fit_task_begin(estimator=estimator, **self._data)

    def end_fit(self):
        """The root task's end: the estimator itself is the fitted model.
        A subtask begun but never finished (an L-BFGS iteration scipy did not
        accept, an epoch a second Ctrl-C cut short) ends first, without a
        model, so every begin has its end."""
        task, self._task = self._task, None
        if task is not None:
            task.call_on_fit_task_end(estimator=self.estimator)
        if self._root is not None:
            self._root.call_on_fit_task_end(estimator=self.estimator, **self._data,
                                            reconstruction_attributes={})

    # -- stochastic solvers: one subtask per epoch ----------------------------
    def begin_epoch(self, run):
        """Before an epoch: its subtask, reporting the model it starts from."""
        if not self.active:
            return
        self._task = self._root.subcontext(task_name="epoch")
        self._task.call_on_fit_task_begin(
            estimator=self.estimator, **self._data,
            reconstruction_attributes=lambda: self._model(run.layout, run.params, run.stats))

    def end_epoch(self, run):
        """After an epoch is recorded: report the model as it is now. True
        when a callback asks to stop."""
        if not self.active:
            return False
        task, self._task = self._task, None
        self.stopped = task.call_on_fit_task_end(
            estimator=self.estimator, **self._data,
            reconstruction_attributes=lambda: self._model(run.layout, run.params, run.stats))
        return self.stopped

    # -- lbfgs: one subtask per iteration -------------------------------------
    # scipy calls back at the end of an iteration only; an iteration begins
    # at its first evaluation of the objective, so converging or reaching
    # max_iter leaves no subtask begun that never ran (running out of
    # function evaluations, max_fun, can: end_fit ends it).
    def lbfgs_callback(self, layout, params, stats, trained):
        """The ``callback`` for scipy.optimize.minimize (None without
        callbacks), starting from the weights params of which scipy
        optimizes params[trained] (frozen_layers keep the rest): ends the
        iteration scipy just accepted, reporting its weights; raises
        StopIteration (scipy >= 1.11 stops there) when a callback asks to
        stop."""
        if not self.active:
            return None
        self._lbfgs = (layout, params.copy(), stats)

        def end_lbfgs_iteration(intermediate_result):
            task, self._task = self._task, None
            params = self._lbfgs[1].copy()
            params[trained] = intermediate_result.x
            self._lbfgs = (layout, params, stats)
            done = {"n_iter_": task.task_id + 1, "loss_": float(intermediate_result.fun)}
            if task.call_on_fit_task_end(
                    estimator=self.estimator, **self._data,
                    reconstruction_attributes=lambda: {**self._model(layout, params, stats),
                                                       **done}):
                self.stopped = True
                raise StopIteration

        return end_lbfgs_iteration

    def lbfgs_evaluation(self):
        """Called by each evaluation of the objective: the first one after
        an accepted iteration begins the next, reporting the last accepted
        weights (the line search's trial points are not a model)."""
        if self.active and self._task is None:
            self._task = self._root.subcontext(task_name="lbfgs-iter")
            self._task.call_on_fit_task_begin(
                estimator=self.estimator, **self._data,
                reconstruction_attributes=lambda: {**self._model(*self._lbfgs),
                                                   "n_iter_": self._task.task_id})

    # -------------------------------------------------------------------------
    def _model(self, layout, params, stats):
        """The fitted attributes of the model at params/stats, for a copy of
        the estimator (scikit-learn's ``fitted_estimator``): the weights
        unpacked, and copies of the containers the fit goes on appending to,
        so the copy stays as it was reported. Scalars (n_iter_, loss_, t_)
        are the estimator's at that moment already."""
        est = self.estimator
        coefs, intercepts, gamma, beta, mean, var = layout.unpack(params, stats)
        model = {"coefs_": coefs, "intercepts_": intercepts, "bn_gamma_": gamma,
                 "bn_beta_": beta, "bn_moving_mean_": mean, "bn_moving_var_": var}
        for name in ("loss_curve_", "validation_scores_"):
            if isinstance(getattr(est, name, None), list):
                model[name] = list(getattr(est, name))
        if isinstance(getattr(est, "history_", None), dict):
            model["history_"] = {k: list(v) for k, v in est.history_.items()}
        return model
