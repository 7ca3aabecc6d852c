export { decodeName, encodeName, signalFilePath } from "./file-names.js";
export { fromUrl, PersistFile, type PersistFileOptions } from "./persist-file.js";
