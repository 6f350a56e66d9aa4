// Owned by the KTAP parser work; see the module docs in parse.ts and console.ts.
export {};
