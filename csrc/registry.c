/*
 * registry.c -- the property tables of the registries declared in fastnn.h,
 * one entry per row of each X-macro list, in code order.
 */
#include "fastnn.h"

#define FNN_ACT_INFO(id, name, hidden, auto_init) {name, hidden, auto_init},
#define FNN_SOLVER_INFO(id, name, uses_v) {name, uses_v},
#define FNN_NAME_ONLY(id, name) name,

const fnn_activation_info fnn_activation_table[FNN_ACT_COUNT] = {FNN_ACTIVATIONS(FNN_ACT_INFO)};
const fnn_solver_info fnn_solver_table[FNN_SOLVER_COUNT] = {FNN_SOLVERS(FNN_SOLVER_INFO)};
const char *const fnn_loss_names[FNN_LOSS_COUNT] = {FNN_LOSSES(FNN_NAME_ONLY)};
const char *const fnn_batch_norm_names[FNN_BN_COUNT] = {FNN_BATCH_NORMS(FNN_NAME_ONLY)};
const char *const fnn_clip_names[FNN_CLIP_COUNT] = {FNN_CLIPS(FNN_NAME_ONLY)};
const char *const fnn_penalty_names[FNN_PENALTY_COUNT] = {FNN_PENALTIES(FNN_NAME_ONLY)};
