//! `@identsphere/react`: the React bindings and, re-exported, the client they are built on.

export * from "./client/index.js";
export * from "./react/index.js";
