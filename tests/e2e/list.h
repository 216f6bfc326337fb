/* Every end-to-end suite; each file drives the real binary over HTTP. */
AD_SUITE(e2e_foundation)
AD_SUITE(e2e_pipeline)
AD_SUITE(e2e_agents_api)
AD_SUITE(e2e_inference)
AD_SUITE(e2e_training)
AD_SUITE(e2e_image)
