/*
 * MDX clean-up for Docusaurus sources, as plain text work: no Markdown parser
 * is needed, so importers (providers) and the Markdown service share it.
 */
#ifndef BOOKD_MDX_H
#define BOOKD_MDX_H

#include <stddef.h>

#include "buf.h"

/* Copies `in` to `out` without MDX: top-level `import`/`export` lines, JSX
 * comments and JSX tags (<Tabs>, </TabItem>, <Foo x="1" />) are dropped; the
 * Markdown between tags is kept. Fenced code and inline code are left alone. */
int md_strip_mdx(const char *in, size_t n, struct buf *out) WUR;

#endif
