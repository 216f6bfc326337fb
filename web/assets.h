/* The dashboard's files, built into agentd: tools/embed_assets.c writes
 * their table ($(BUILD)/gen/web_assets.c) from web/ at build time. */
#ifndef AD_WEB_ASSETS_H
#define AD_WEB_ASSETS_H

#include <stddef.h>

/* One file; everything it points to is static and never freed. */
typedef struct web_asset {
    const char *name;         /* its flat name: "app.js" */
    const char *content_type; /* from its extension: "text/javascript; charset=utf-8" */
    const char *etag;         /* a quoted hash of the bytes: "\"0123456789abcdef\"" */
    const unsigned char *data;
    size_t len;
} web_asset;

/* The file named `name` (one path segment, "index.html"), or NULL. */
const web_asset *web_asset_find(const char *name);

#endif
