// Package gossipkey is the speakers' memberlist encryption key Secret: its format, a fresh
// random key, and Ensure, which the controller runs so that the Secret exists without the
// Helm chart rendering key material (a `helm template` render, as Argo CD and Flux do,
// would otherwise produce a new key each time).
//
// Format (Secret type Opaque, in the release namespace): data "key" is the primary key,
// 16, 24 or 32 raw bytes; speakers encrypt gossip with it. Every data entry whose name
// starts with "key." (for example "key.next" or "key.previous") holds another key that
// speakers accept when decrypting. Rotation (docs/security.md): add the new key as
// "key.next", wait until every speaker has it, make it "key" and keep the old one as
// "key.previous", later remove "key.previous". Writing a new "key" directly also works:
// speakers accept it at once and start encrypting with it only after a delay (see
// speaker/members), which covers the time the Secret takes to reach every speaker.
//
// Ensure only ever creates the Secret when it is missing (a create that finds it returns
// AlreadyExists): it never reads, changes or rotates an existing key, so the controller
// needs the "create" verb on Secrets in its namespace and nothing else.
package gossipkey
