export { fromUrl, PersistMongo, type PersistMongoOptions } from "./persist-mongo.js";
export { type SignalDocument, signalDocumentId } from "./signal-document.js";
