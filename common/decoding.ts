// The decoder's words for how it decodes, shared by the settings (package.json declares their choices), the runtime
// and the command line.
export type Algorithm = "origin" | "maskgit_plus" | "topk_margin" | "entropy";
export type Schedule = "timestep" | "block";
/** none: exact, every step recomputes the sequence; prefix / dual: Fast-dLLM's KV caches (docs/speed.md). */
export type CacheMode = "none" | "prefix" | "dual";
