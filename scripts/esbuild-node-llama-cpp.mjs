// An esbuild plugin shared by scripts/bundle.mjs (the extension) and scripts/gpu-kit.mjs (the GPU benchmark's
// bundled CLI): node-llama-cpp is used only for its downloader, and importing its index would pull in all of
// its prebuilt-binding packages, so `node-llama-cpp` resolves to just that module.
import { resolve } from "node:path";

export function nodeLlamaCppDownloaderOnly(root) {
    const dist = resolve(root, "node_modules/node-llama-cpp/dist");
    return {
        name: "node-llama-cpp-parts",
        setup(b) {
            b.onResolve({ filter: /^node-llama-cpp$/ }, () => ({ path: "node-llama-cpp-parts", namespace: "nlc" }));
            b.onLoad({ filter: /.*/, namespace: "nlc" }, () => ({
                resolveDir: dist,
                contents: `export { createModelDownloader } from "./utils/createModelDownloader.js";\n`
            }));
        }
    };
}
