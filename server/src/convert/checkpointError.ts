/** The checkpoint cannot be converted: one sentence naming the cause and the fix. */
export class CheckpointError extends Error {}
