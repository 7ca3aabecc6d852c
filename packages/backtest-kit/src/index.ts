export { decodeValue, encodeValue } from "./codec.js";
export {
  CRASH_CRITICAL,
  DOMAINS,
  type Domain,
  type DomainClasses,
  type DomainInstanceBase,
  domainNamespace,
  type FrameworkValue,
} from "./domains.js";
export { type ImportReport, importBacktestKitStore } from "./importer.js";
export {
  type Installation,
  type InstallOptions,
  installPersistKit,
  type PersistKitSource,
  persistKitClasses,
} from "./install.js";
