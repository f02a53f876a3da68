import BrookProtocol
import Foundation

// Config resources (topics and the broker) as DescribeConfigs (32), AlterConfigs (33),
// IncrementalAlterConfigs (44) and CreateTopics (19) see them: what each config is set to and
// where the value comes from, and the one validated path by which configs change.

/// Kafka's ConfigResource types and config sources.
enum ConfigResourceType: Int8 {
    case topic = 2
    case broker = 4
}

enum ConfigSource: Int8 {
    case dynamicTopic = 1
    case dynamicBroker = 2
    case dynamicDefaultBroker = 3
    case staticBroker = 4
    case defaultConfig = 5
}

/// Broker configs Brook reports; the `log.*` ones are the defaults of new topics and can be
/// altered at run time (cluster-wide, resource name "").
let dynamicBrokerConfigs: Set<String> = Set(brokerNameForTopicConfig.values)

extension Broker {
    /// A topic's configs with their sources (topic, dynamic broker default, static broker
    /// default, Kafka's default) and, when asked, the synonyms that explain them.
    func describeTopicConfigs(_ t: TopicMetadata, keys: [String]?, synonyms: Bool, version: Int16) -> [DescribeConfigsResponse.DescribeConfigsResourceResult] {
        let brokerConfigs = catalog.withLock { $0.brokerConfigs }
        return TopicConfigCatalog.entries.filter { keys == nil || keys!.isEmpty || keys!.contains($0.name) }.map { e in
            var c = DescribeConfigsResponse.DescribeConfigsResourceResult()
            c.name = e.name
            c.readOnly = false
            c.isSensitive = false
            c.configType = e.kind.rawValue
            var syn: [DescribeConfigsResponse.DescribeConfigsSynonym] = []
            if let v = t.configs[e.name] {
                c.value = v
                c.configSource = ConfigSource.dynamicTopic.rawValue
                syn.append(synonym(e.name, v, .dynamicTopic))
            } else {
                c.value = effectiveConfig(t, e.name)
                c.isDefault = true
                let bname = brokerNameForTopicConfig[e.name]
                if let bname, brokerConfigs[bname] != nil {
                    c.configSource = ConfigSource.dynamicDefaultBroker.rawValue
                    c.isDefault = false
                } else if let bname, config.topicDefaults[bname] != nil {
                    c.configSource = ConfigSource.staticBroker.rawValue
                    c.isDefault = false
                } else {
                    c.configSource = ConfigSource.defaultConfig.rawValue
                }
            }
            if let bname = brokerNameForTopicConfig[e.name] {
                if let v = brokerConfigs[bname] { syn.append(synonym(bname, v, .dynamicDefaultBroker)) }
                if let v = config.topicDefaults[bname] { syn.append(synonym(bname, v, .staticBroker)) }
            }
            syn.append(synonym(brokerNameForTopicConfig[e.name] ?? e.name, e.defaultValue, .defaultConfig))
            if synonyms { c.synonyms = syn }
            return c
        }
    }

    private func synonym(_ name: String, _ value: String, _ source: ConfigSource) -> DescribeConfigsResponse.DescribeConfigsSynonym {
        var s = DescribeConfigsResponse.DescribeConfigsSynonym()
        s.name = name
        s.value = value
        s.source = source.rawValue
        return s
    }

    /// The broker's static settings and the `log.*` defaults of topics.
    func describeBrokerConfigs(keys: [String]?, synonyms: Bool) -> [DescribeConfigsResponse.DescribeConfigsResourceResult] {
        let dynamic = catalog.withLock { $0.brokerConfigs }
        var entries: [(String, String, ConfigSource, Bool, TopicConfigCatalog.Kind)] = [
            ("broker.id", "\(config.nodeId)", .staticBroker, true, .int),
            ("node.id", "\(config.nodeId)", .staticBroker, true, .int),
            ("listeners", "PLAINTEXT://\(config.host):\(advertisedPort)", .staticBroker, true, .list),
            ("advertised.listeners", "PLAINTEXT://\(advertisedHost):\(advertisedPort)", .staticBroker, true, .list),
            ("log.dirs", config.dataDirectory.path, .staticBroker, true, .string),
            ("auto.create.topics.enable", "\(config.autoCreateTopics)", .staticBroker, true, .boolean),
            ("num.partitions", "\(config.defaultPartitions)", .staticBroker, true, .int),
            ("socket.request.max.bytes", "\(config.socketRequestMaxBytes)", .staticBroker, true, .int),
            ("group.initial.rebalance.delay.ms", "\(config.groupInitialRebalanceDelay.milliseconds)", .staticBroker, true, .int),
            ("group.min.session.timeout.ms", "\(config.groupMinSessionTimeout.milliseconds)", .staticBroker, true, .int),
            ("group.max.session.timeout.ms", "\(config.groupMaxSessionTimeout.milliseconds)", .staticBroker, true, .int),
            ("offsets.retention.minutes", "\(config.offsetsRetention.milliseconds / 60000)", .staticBroker, true, .int),
            ("brook.flush.policy", config.flushPolicy.rawValue, .staticBroker, true, .string),
        ]
        for (topicName, bname) in brokerNameForTopicConfig.sorted(by: { $0.value < $1.value }) {
            let kind = TopicConfigCatalog.byName[topicName]?.kind ?? .string
            if let v = dynamic[bname] {
                entries.append((bname, v, .dynamicDefaultBroker, false, kind))
            } else if let v = config.topicDefaults[bname] {
                entries.append((bname, v, .staticBroker, false, kind))
            } else {
                entries.append((bname, TopicConfigCatalog.byName[topicName]?.defaultValue ?? "", .defaultConfig, false, kind))
            }
        }
        return entries.filter { keys == nil || keys!.isEmpty || keys!.contains($0.0) }.map { e in
            var c = DescribeConfigsResponse.DescribeConfigsResourceResult()
            c.name = e.0
            c.value = e.1
            c.configSource = e.2.rawValue
            c.readOnly = e.3
            c.isDefault = e.2 == .defaultConfig
            c.configType = e.4.rawValue
            if synonyms { c.synonyms = [synonym(e.0, e.1, e.2)] }
            return c
        }
    }

    /// Applies `change` to a topic's or the broker's dynamic configs after validating the result.
    func alter(resourceType: Int8, name: String, validateOnly: Bool, _ change: (inout [String: String], (String) -> String) throws(TopicError) -> Void) -> (ErrorCode, String?) {
        switch ConfigResourceType(rawValue: resourceType) {
        case .topic:
            let result: Result<Void, TopicError> = catalog.withLock { cat in
                guard var meta = cat.topics[name] else { return .failure(TopicError(.unknownTopicOrPartition, "Topic \(name) does not exist")) }
                var configs = meta.configs
                // Called under the catalog lock: resolve defaults without re-locking.
                let brokerConfigs = cat.brokerConfigs
                let defaults = config.topicDefaults
                let effective: (String) -> String = { n in meta.configs[n] ?? Self.brokerDefault(n, brokerConfigs: brokerConfigs, defaults: defaults) }
                do throws(TopicError) {
                    try change(&configs, effective)
                } catch {
                    return .failure(error)
                }
                for (k, v) in configs {
                    if let err = TopicConfigCatalog.validate(name: k, value: v) { return .failure(TopicError(.invalidConfig, err)) }
                }
                if validateOnly { return .success(()) }
                meta.configs = configs
                cat.topics[name] = meta
                do { try cat.save(to: catalogURL) } catch { return .failure(TopicError(.kafkaStorageError, "\(error)")) }
                return .success(())
            }
            if case .failure(let e) = result { return (e.code, e.message) }
            if !validateOnly { reconfigure(topic: name) }
            return (.none, nil)
        case .broker:
            guard name.isEmpty || name == "\(config.nodeId)" else {
                return (.invalidRequest, "Unexpected broker id \(name)")
            }
            let result: Result<Void, TopicError> = catalog.withLock { cat in
                var configs = cat.brokerConfigs
                do throws(TopicError) { try change(&configs, { _ in "" }) } catch { return .failure(error) }
                let reverse = Dictionary(uniqueKeysWithValues: brokerNameForTopicConfig.map { ($1, $0) })
                for (k, v) in configs {
                    guard let topicName = reverse[k] else {
                        return .failure(TopicError(.invalidConfig, "Config \(k) cannot be updated dynamically"))
                    }
                    if let err = TopicConfigCatalog.validate(name: topicName, value: v) { return .failure(TopicError(.invalidConfig, err)) }
                }
                if validateOnly { return .success(()) }
                cat.brokerConfigs = configs
                do { try cat.save(to: catalogURL) } catch { return .failure(TopicError(.kafkaStorageError, "\(error)")) }
                return .success(())
            }
            if case .failure(let e) = result { return (e.code, e.message) }
            if !validateOnly {
                for name in catalog.withLock({ Array($0.topics.keys) }) { reconfigure(topic: name) }
            }
            return (.none, nil)
        case nil:
            return (.invalidRequest, "Unsupported resource type \(resourceType)")
        }
    }
}
