// Prints HashiCorp's hclwrite.Format (the engine of `terraform fmt`, as the npm package
// @cdktf/hcl-tools) of the HCL read on stdin: the reference of tests/fmt_differential.rs.
// NODE_PATH points at the cache that scripts/lib.sh (ensure_hcl_tools) installs it into.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const root = process.env.HCL_TOOLS_DIR;
const { format } = require(root ? `${root}/node_modules/@cdktf/hcl-tools` : "@cdktf/hcl-tools");
const input = readFileSync(0, "utf8");
process.stdout.write(await format(input));
