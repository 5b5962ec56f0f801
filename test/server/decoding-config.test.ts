// The grammar of decoding configurations that eval --configs, bench --compare and the runtime benchmark's --modes
// share: every form it takes, and every refusal with its sentence, which ends with what is accepted.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DECODING_CONFIG_GRAMMAR, parseDecodingConfig, parseDecodingConfigs } from "../../server/src/cli/decodingConfig";
import { DECLARED } from "../../common/settings";

test("each form: a cache word, reuse, the settings' terms and the decoder's, in any order, the name as written", () => {
    const cases: [string, object, object][] = [
        ["none", { cache: "none", cacheReuse: false }, {}],
        ["prefix", { cache: "prefix", cacheReuse: false }, {}],
        ["dual", { cache: "dual", cacheReuse: false }, {}],
        ["dual+reuse", { cache: "dual", cacheReuse: true }, {}],
        ["reuse+prefix", { cache: "prefix", cacheReuse: true }, {}],
        ["dual+confidence-threshold=0.9", { cache: "dual", cacheReuse: false, confidenceThreshold: 0.9 }, {}],
        ["confidence-threshold=0", { cache: "none", cacheReuse: false, confidenceThreshold: 0 }, {}],
        ["block-length=16", { cache: "none", cacheReuse: false, blockLength: 16 }, {}],
        ["dual+algorithm=maskgit_plus+entropy-bound=1", { cache: "dual", cacheReuse: false, algorithm: "maskgit_plus" }, { entropyBound: 1 }],
        ["none+eot-penalty=5", { cache: "none", cacheReuse: false }, { eotPenalty: 5 }],
        [
            "prefix+reuse+block-length=8+confidence-threshold=0.5+algorithm=topk_margin+entropy-bound=0.25+eot-penalty=2",
            { cache: "prefix", cacheReuse: true, blockLength: 8, confidenceThreshold: 0.5, algorithm: "topk_margin" },
            { entropyBound: 0.25, eotPenalty: 2 }
        ]
    ];
    for (const [text, settings, decoder] of cases) assert.deepEqual(parseDecodingConfig(text), { name: text, settings, decoder }, text);
    assert.equal(parseDecodingConfig("  dual+reuse ").name, "dual+reuse", "spaces around it are not part of the name");
    assert.deepEqual(
        parseDecodingConfigs("none, dual,dual+reuse").map((c) => c.name),
        ["none", "dual", "dual+reuse"]
    );
});

test("the cache words are the setting's, and every setting term's choices and range come from its declaration", () => {
    assert.deepEqual(DECLARED.cache.enum, ["none", "prefix", "dual"]);
    for (const mode of DECLARED.cache.enum!) assert.equal(parseDecodingConfig(mode).settings.cache, mode);
    for (const algorithm of DECLARED.algorithm.enum!) assert.equal(parseDecodingConfig(`algorithm=${algorithm}`).settings.algorithm, algorithm);
    assert.equal(parseDecodingConfig(`block-length=${DECLARED.blockLength.maximum}`).settings.blockLength, DECLARED.blockLength.maximum);
    assert.ok(DECODING_CONFIG_GRAMMAR.includes("none | prefix | dual"));
    assert.ok(DECODING_CONFIG_GRAMMAR.includes("block-length (dreamCoder.blockLength: a whole number from 1 to 256)"));
    assert.ok(DECODING_CONFIG_GRAMMAR.includes("algorithm (dreamCoder.algorithm: one of origin, maskgit_plus, topk_margin, entropy)"));
});

test("every refusal says what is wrong, then what a configuration may say", () => {
    const refusals: [string, string][] = [
        ["", "it is empty"],
        ["fast", '"fast" is not a cache mode (none, prefix, dual) or reuse'],
        ["exact", '"exact" is not a cache mode (none, prefix, dual) or reuse'],
        ["dual+", '"" is not a cache mode (none, prefix, dual) or reuse'],
        ["dual+prefix", "it names two cache modes"],
        ["dual+reuse+reuse", "it names reuse twice"],
        ["block-length=8+block-length=16", "it names block-length twice"],
        ["none+reuse", "reuse keeps the cache for the next request, and none has no cache"],
        ["reuse", "reuse keeps the cache for the next request, and none has no cache"],
        ["threshold=0.9", '"threshold" is not a key (block-length, confidence-threshold, algorithm, entropy-bound, eot-penalty)'],
        ["dual+steps=3", '"steps" is not a key (block-length, confidence-threshold, algorithm, entropy-bound, eot-penalty)'],
        ["toString=1", '"toString" is not a key (block-length, confidence-threshold, algorithm, entropy-bound, eot-penalty)'],
        ["confidence-threshold=2", "dreamCoder.confidenceThreshold: 2 is not valid (a number from 0 to 1)"],
        ["block-length=0", "dreamCoder.blockLength: 0 is not valid (a whole number from 1 to 256)"],
        ["block-length=two", 'dreamCoder.blockLength: "two" is not valid (a whole number from 1 to 256)'],
        ["block-length=", 'dreamCoder.blockLength: "" is not valid (a whole number from 1 to 256)'],
        ["block-length=300", "dreamCoder.blockLength: 300 is more than 256 (each cached step recomputes its whole block"],
        ["algorithm=greedy", 'dreamCoder.algorithm: "greedy" is not valid (one of origin, maskgit_plus, topk_margin, entropy)'],
        [
            "dual+algorithm=origin+confidence-threshold=0.9",
            'dreamCoder.confidenceThreshold: 0.9 needs an algorithm that ranks by confidence (maskgit_plus, topk_margin or entropy), not dreamCoder.algorithm "origin"'
        ],
        ["entropy-bound=-1", 'entropy-bound takes a number above 0, not "-1"'],
        ["dual+entropy-bound=", 'entropy-bound takes a number above 0, not ""'],
        ["eot-penalty=0", 'eot-penalty takes a number above 0, not "0"'],
        ["eot-penalty=Infinity", 'eot-penalty takes a number above 0, not "Infinity"']
    ];
    for (const [text, why] of refusals) {
        assert.throws(
            () => parseDecodingConfig(text),
            (e: Error) => e.message.startsWith(`bad configuration "${text.trim()}": ${why}`) && e.message.endsWith(`; ${DECODING_CONFIG_GRAMMAR}`),
            text
        );
    }
    assert.throws(() => parseDecodingConfigs("none,dual, none"), { message: 'configuration "none" is given twice' });
    assert.throws(() => parseDecodingConfigs("none,,dual"), { message: `bad configuration "": it is empty; ${DECODING_CONFIG_GRAMMAR}` });
});

test("a command refuses the terms it cannot honour, in its own words, and takes the rest", () => {
    const unsupported = { reuse: "eval decodes each problem once: reuse has no earlier request to keep a cache from" };
    assert.throws(
        () => parseDecodingConfigs("none,dual+reuse", unsupported),
        (e: Error) => e.message.startsWith(`bad configuration "dual+reuse": ${unsupported.reuse}; a configuration is`)
    );
    assert.equal(parseDecodingConfigs("none,dual+entropy-bound=1", unsupported).length, 2);
});
