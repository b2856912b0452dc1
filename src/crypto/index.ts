export * from './bytes.js';
export * from './hkdf.js';
export * from './aead.js';
export * from './sign.js';
