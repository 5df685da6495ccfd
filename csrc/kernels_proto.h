/* Prototypes of the type-generic kernels; instantiated by generic.h. */

/* ---- dense.c ---------------------------------------------------------- */
/* Row-major C (m x n) = alpha * op(A) op(B) + beta * C, through BLAS, one
 * of the core's own sgemm kernels (float, B not transposed, as
 * blas->sgemm_kernel allows) or, for shapes too small to amortize a call, a
 * plain loop. */
void FN(fnn_gemm)(const fnn_blas *blas, int trans_a, int trans_b, int64_t m, int64_t n,
                  int64_t k, REAL alpha, const REAL *a, int64_t lda, const REAL *b,
                  int64_t ldb, REAL beta, REAL *c, int64_t ldc);
/* out (rows x n_out) = inp (rows x n_in) W (n_in x n_out) + bias (n_out, or NULL) */
void FN(fnn_dense_forward)(const fnn_blas *blas, REAL *out, const REAL *inp, const REAL *w,
                           const REAL *bias, int64_t rows, int64_t n_in, int64_t n_out,
                           int nt);
/* dw (n_in x n_out) [+]= inp^T dout; dbias (n_out) [+]= column sums of dout (when
 * not NULL); dinp (rows x n_in) = dout W^T (when not NULL), with wt (n_in x
 * n_out elements, or NULL) as scratch for W^T. */
void FN(fnn_dense_backward)(const fnn_blas *blas, REAL *dinp, REAL *dw, REAL *dbias,
                            const REAL *dout, const REAL *inp, const REAL *w, REAL *wt,
                            int64_t rows, int64_t n_in, int64_t n_out, int accumulate, int nt);
/* out (n) [+]= column sums of x (rows x n), each summed in row order. */
void FN(fnn_col_sums)(REAL *out, const REAL *x, int64_t rows, int64_t n, int accumulate,
                      int nt);
/* dst (rows x n_cols) = the data rows idx[0..rows) of X, densified. */
void FN(fnn_gather_x)(REAL *dst, const fnn_data *data, const int64_t *idx, int64_t rows,
                      int nt);
/* A hint to bring the dense rows idx[0..rows) of X into cache (no effect on results). */
void FN(fnn_prefetch_rows)(const fnn_data *data, const int64_t *idx, int64_t rows);

/* Kernels that switch on a registry code (fastnn.h) return FNN_ERR_BADARG
 * for a code they do not know.  The entry points check every code first
 * (fnn_check_net), so there the kernels' status needs no checking. */

/* ---- activation.c ----------------------------------------------------- */
/* out = act(pre), element-wise (softmax: per row of `cols`); out may be pre. */
fnn_status FN(fnn_act_forward)(int act, double slope, REAL *out, const REAL *pre,
                               int64_t rows, int64_t cols, int nt);
/* dpre = dout * act'(pre), using pre and/or out = act(pre); dpre may be dout.
 * Not defined for softmax (its gradient is fused into the loss): BADARG. */
fnn_status FN(fnn_act_backward)(int act, double slope, REAL *dpre, const REAL *dout,
                                const REAL *pre, const REAL *out, int64_t n, int nt);

/* ---- loss.c ------------------------------------------------------------ */
/* Sum over rows of sw_i * loss_i, loss_i summed over outputs (double).
 * rowbuf: scratch of `rows` doubles.  NaN for an unknown loss code. */
double FN(fnn_loss_sum)(int loss, const REAL *p, const REAL *y, const REAL *sw,
                        int64_t rows, int64_t n_out, double *rowbuf, int nt);
/* delta = (p - y) * sw_i * scale: gradient of the loss w.r.t. the output
 * pre-activation for the canonical activation/loss pairs. */
void FN(fnn_output_delta)(REAL *delta, const REAL *p, const REAL *y, const REAL *sw,
                          double scale, int64_t rows, int64_t n_out, int nt);

/* ---- batchnorm.c ------------------------------------------------------- */
/* Training: batch mean and biased variance per feature (written to mean,
 * var), xhat = (x - mean) / sqrt(var + eps), out = gamma xhat + beta.
 * istd receives 1/sqrt(var + eps). out may be x. */
void FN(fnn_bn_forward_train)(REAL *out, REAL *xhat, REAL *istd, double *mean, double *var,
                              const REAL *x, const REAL *gamma, const REAL *beta,
                              int64_t rows, int64_t width, double eps, int nt);
/* Inference with moving statistics: out = gamma (x - mean)/sqrt(var+eps) + beta. */
void FN(fnn_bn_forward_infer)(REAL *out, const REAL *x, const REAL *gamma, const REAL *beta,
                              const REAL *mean, const REAL *var, int64_t rows,
                              int64_t width, double eps, int nt);
/* moving = m * moving + (1 - m) * batch, for mean and var. */
void FN(fnn_bn_update_moving)(REAL *moving_mean, REAL *moving_var, const double *mean,
                              const double *var, int64_t width, double momentum);
/* dgamma, dbeta [+]= reductions of dy; dx (may be dy, or NULL) = input gradient. */
void FN(fnn_bn_backward)(REAL *dx, REAL *dgamma, REAL *dbeta, const REAL *dy,
                         const REAL *xhat, const REAL *istd, const REAL *gamma,
                         int64_t rows, int64_t width, int accumulate, int nt);

/* ---- dropout.c --------------------------------------------------------- */
/* out = dropout(x) with drop probability `rate`; keep (n bytes) records the
 * mask; element i draws key (seed, stream, index0 + i).  alpha = 1: Keras
 * AlphaDropout.  out may be x. */
void FN(fnn_dropout_forward)(REAL *out, uint8_t *keep, const REAL *x, int64_t n,
                             double rate, int alpha, uint64_t seed, uint64_t stream,
                             uint64_t index0, int nt);
/* dx = dy * d(out)/dx; dx may be dy. */
void FN(fnn_dropout_backward)(REAL *dx, const REAL *dy, const uint8_t *keep, int64_t n,
                              double rate, int alpha, int nt);

/* ---- clip.c ------------------------------------------------------------ */
/* Apply the network's clipping mode to grad (all trainable tensors);
 * sq_norms[i] holds tensor i's squared norm (fnn_list_tensors order). */
fnn_status FN(fnn_clip_gradients)(const fnn_net *net, REAL *grad, const double *sq_norms,
                                  int n_tensors, const int64_t *off, const int64_t *len,
                                  int nt);

/* ---- regularize.c ------------------------------------------------------ */
/* One pass over the gradient of every trainable tensor (off/len as
 * fnn_list_tensors): grad += d(penalty)/dW on every Dense kernel, and sq[t] =
 * tensor t's squared norm after that.  Returns the penalty value.  `scale` is
 * 1/(sum of the batch's sample weights), as sklearn.  part: scratch of
 * 3 * fnn_reduce_chunks(n_tensors, len) doubles. */
double FN(fnn_penalty_norms)(const fnn_net *net, const REAL *params, REAL *grad, double scale,
                             int n_tensors, const int64_t *off, const int64_t *len, double *sq,
                             double *part, int nt);
/* Keras MaxNorm(max_norm, axis=0) on every Dense kernel. */
void FN(fnn_apply_max_norm)(const fnn_net *net, REAL *params, int nt);

/* ---- optim.c ----------------------------------------------------------- */
/* One update of every parameter with learning rate lr; increments opt->t. */
fnn_status FN(fnn_optim_step)(const fnn_net *net, REAL *params, const REAL *grad,
                              fnn_optstate *opt, double lr, int nt);
