/*
 * Every unit-test suite, registered in one list. Each entry names a function
 * `Suite *<name>_suite(void)` defined in the file that tests that module;
 * tests/unit/<dir>/<module>.c tests <dir>/<module>.c.
 * Add a line here when you add a suite.
 */
AD_SUITE(base_buf)
AD_SUITE(model_text)
AD_SUITE(model_analysis)
AD_SUITE(model_stopwords)
AD_SUITE(model_passages)
AD_SUITE(model_stats)
AD_SUITE(model_metrics)
AD_SUITE(model_perturb)
AD_SUITE(model_index)
AD_SUITE(llm_gemini)
AD_SUITE(llm_retry)
AD_SUITE(llm_client)
AD_SUITE(server_router)
AD_SUITE(server_request)
AD_SUITE(server_auth)
AD_SUITE(config_config)
AD_SUITE(base_json)
AD_SUITE(storage_db)
AD_SUITE(storage_states)
AD_SUITE(storage_agents)
AD_SUITE(storage_jobs)
AD_SUITE(storage_versions)
AD_SUITE(storage_trainings)
AD_SUITE(storage_maintenance)
AD_SUITE(pipeline_runner)
AD_SUITE(pipeline_training)
AD_SUITE(handlers_agents)
