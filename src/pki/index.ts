/** The group PKI and the mutual-TLS identity layer of the control plane. */
export * from './roles.js';
export * from './names.js';
export * from './subject.js';
export * from './files.js';
export * from './fingerprint.js';
export * from './ca.js';
export * from './issue.js';
export * from './identity.js';
export * from './tlsOptions.js';
export * from './mtlsServer.js';
export * from './acl.js';
