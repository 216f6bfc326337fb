/*
 * Deterministic prompt perturbation for evaluation: the same prompt and seed
 * always give the same variant, on any machine (own splitmix64 PRNG).
 */
#ifndef AD_MODEL_PERTURB_H
#define AD_MODEL_PERTURB_H

#include <stddef.h>
#include <stdint.h>

/* What a perturbation did. */
typedef enum perturb_op {
    PERTURB_NONE, /* nothing could change the prompt (e.g. one word, no letters) */
    PERTURB_DROP, /* dropped words: at most 40% of the content words, never all words */
    PERTURB_SWAP, /* swapped two adjacent, different words */
    PERTURB_CASE  /* changed letter case: lower, upper or capitalized words */
} perturb_op;

/* Returns a variant of prompt[0..n), NUL-terminated and owned by the caller
 * (free()), with its words joined by single spaces. The operation is drawn
 * from `seed` and the prompt; if it would leave the words unchanged the next
 * one is tried, so the variant differs from the input's words unless no
 * operation can change them. *op (may be NULL) receives what was done. */
char *perturb_prompt(const char *prompt, size_t n, uint64_t seed, perturb_op *op);

/* "none", "drop", "swap" or "case"; a static string. */
const char *perturb_op_name(perturb_op op);

#endif
