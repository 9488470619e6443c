//! `merge`: several CloudFormation templates into one, as cloudfriend's merge did for the original.

use crate::error::MergeError;
use serde_json::{Map, Value};

/// Sections merged key by key: a key present twice must have equal values.
const KEYED_SECTIONS: &[&str] = &["Metadata", "Parameters", "Rules", "Mappings", "Conditions", "Resources", "Outputs"];
/// Sections whose logical ids share one namespace in CloudFormation.
const LOGICAL_ID_SECTIONS: &[&str] = &["Parameters", "Resources"];

/// Merges templates in order. `AWSTemplateFormatVersion` and `Transform` must agree where given; differing
/// `Description`s are joined with `; ` in input order; every other section is merged key by key, and a key
/// present in two templates is allowed only with equal values, else the error names the section and key.
pub fn merge(templates: &[Value]) -> Result<Value, MergeError> {
    let mut merged = Map::new();
    let mut descriptions: Vec<String> = Vec::new();
    for (index, template) in templates.iter().enumerate() {
        let Value::Object(sections) = template else {
            return Err(MergeError::NotATemplate { index });
        };
        for (section, value) in sections {
            match section.as_str() {
                "Description" => {
                    let text = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
                    if !descriptions.contains(&text) {
                        descriptions.push(text);
                    }
                }
                "AWSTemplateFormatVersion" | "Transform" => match merged.get(section) {
                    Some(existing) if existing != value => {
                        return Err(MergeError::Conflict { section: section.clone(), key: section.clone(), index });
                    }
                    _ => {
                        merged.insert(section.clone(), value.clone());
                    }
                },
                name if KEYED_SECTIONS.contains(&name) => {
                    let Value::Object(entries) = value else {
                        return Err(MergeError::SectionNotAnObject { index, section: section.clone() });
                    };
                    let target = merged
                        .entry(section.clone())
                        .or_insert_with(|| Value::Object(Map::new()))
                        .as_object_mut()
                        .expect("merged sections are objects");
                    for (key, entry) in entries {
                        match target.get(key) {
                            Some(existing) if existing != entry => {
                                return Err(MergeError::Conflict { section: section.clone(), key: key.clone(), index });
                            }
                            _ => {
                                target.insert(key.clone(), entry.clone());
                            }
                        }
                    }
                }
                _ => return Err(MergeError::UnknownSection { index, section: section.clone() }),
            }
        }
    }
    if let (Some(Value::Object(parameters)), Some(Value::Object(resources))) =
        (merged.get(LOGICAL_ID_SECTIONS[0]), merged.get(LOGICAL_ID_SECTIONS[1]))
        && let Some(key) = parameters.keys().find(|k| resources.contains_key(*k))
    {
        return Err(MergeError::DuplicateLogicalId {
            key: key.clone(),
            first: LOGICAL_ID_SECTIONS[0].into(),
            second: LOGICAL_ID_SECTIONS[1].into(),
        });
    }
    if !descriptions.is_empty() {
        merged.insert("Description".into(), Value::String(descriptions.join("; ")));
    }
    Ok(crate::sorted(Value::Object(merged)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn descriptions_are_joined_once_each() {
        let merged =
            merge(&[json!({"Description": "a"}), json!({"Description": "b"}), json!({"Description": "a"})]).unwrap();
        assert_eq!(merged["Description"], "a; b");
    }

    #[test]
    fn a_parameter_and_a_resource_may_not_share_an_id() {
        let error = merge(&[
            json!({"Parameters": {"Bucket": {"Type": "String"}}}),
            json!({"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}}),
        ])
        .unwrap_err();
        assert_eq!(error.to_string(), "logical id \"Bucket\" is both in Parameters and in Resources");
    }

    #[test]
    fn format_versions_must_agree() {
        let error = merge(&[
            json!({"AWSTemplateFormatVersion": "2010-09-09"}),
            json!({"AWSTemplateFormatVersion": "2011-01-01"}),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("AWSTemplateFormatVersion"), "{error}");
    }
}
