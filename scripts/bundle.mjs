// Bundles the extension for packaging and the real-editor tests: dist/client.js (the extension host side,
// `vscode` left to the host) and dist/server.js (the language server). node-llama-cpp is used only for its
// downloader (the GGUF header is read by server/src/runtime/ggufHeader.ts): importing its index would pull in
// all of its prebuilt-binding packages, so the bundle takes just that module. The native addon is loaded at run time from native/build/ (see
// server/src/runtime/native.ts), which the .vsix carries.
import { build } from "esbuild";
import { rmSync } from "node:fs";
import { nodeLlamaCppDownloaderOnly } from "./esbuild-node-llama-cpp.mjs";

const onlyWhatWeUse = nodeLlamaCppDownloaderOnly(".");

// --production (npm run package): minified, no source maps.
const production = process.argv.includes("--production");
const common = {
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    sourcemap: !production,
    minify: production,
    logLevel: "warning",
    // An optional native speed-up of ipull's file copies; it falls back to plain copies without it.
    external: ["vscode", "@reflink/reflink"]
};

rmSync("dist", { recursive: true, force: true });
await Promise.all([
    build({ ...common, entryPoints: ["client/src/extension.ts"], outfile: "dist/client.js" }),
    build({
        ...common,
        entryPoints: ["server/src/server.ts"],
        outfile: "dist/server.js",
        plugins: [onlyWhatWeUse],
        // node-llama-cpp is ESM and finds its own folder through import.meta.url, which a CommonJS bundle lacks.
        define: { "import.meta.url": "__importMetaUrl" },
        banner: { js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;' }
    })
]);
