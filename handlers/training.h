/*
 * Iterative training and feedback (seeds 000/001): POST .../train queues a
 * run, GET .../training shows its iterations and trained data in the
 * seed-001 shape, and .../feedback stores and lists human feedback that the
 * next run turns into persona suggestions and evaluation cases.
 */
#ifndef AD_HANDLERS_TRAINING_H
#define AD_HANDLERS_TRAINING_H

#include "api/request.h"
#include "base/err.h"

void handle_agent_train(ad_request *req, ad_response *res);
void handle_agent_training(ad_request *req, ad_response *res);
void handle_agent_feedback_add(ad_request *req, ad_response *res);
void handle_agent_feedback_list(ad_request *req, ad_response *res);

/* 0 when `name` is a valid model version name: 1-64 of [A-Za-z0-9_.-]. */
int training_check_version_name(const char *name, ad_err *e);

#endif
