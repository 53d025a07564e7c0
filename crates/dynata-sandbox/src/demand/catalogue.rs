//! The reference data every account sees: countries and languages,
//! targeting attributes per country and language, survey topics, sources
//! and study metadata. Invented, but shaped exactly as Dynata's answers.

use serde_json::{Value, json};

/// Countries and the languages each is fielded in.
const COUNTRIES: &[(&str, &str, &[&str])] = &[
    ("US", "United States", &["en", "es"]),
    ("CA", "Canada", &["en", "fr"]),
    ("GB", "United Kingdom", &["en"]),
    ("DE", "Germany", &["de"]),
    ("FR", "France", &["fr"]),
    ("JP", "Japan", &["ja"]),
];

const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("es", "Spanish"),
    ("fr", "French"),
    ("de", "German"),
    ("ja", "Japanese"),
];

/// Survey topics, with their descriptions.
pub(crate) const SURVEY_TOPICS: &[(&str, &str)] = &[
    ("AUTOMOTIVE", "Cars, motorcycles and mobility"),
    ("BEAUTY", "Cosmetics and personal care"),
    (
        "CONSUMER_ELECTRONICS",
        "Phones, computers and home electronics",
    ),
    ("FINANCE", "Banking, insurance and investments"),
    ("FOOD_BEVERAGE", "Food, drink and groceries"),
    ("HEALTH", "Health and wellbeing"),
    ("TRAVEL", "Travel and tourism"),
    ("EXERCISE_FITNESS", "Sport and fitness"),
];

/// Study types and requirements a project's `category` may name.
pub(crate) const STUDY_TYPES: &[&str] = &["ADHOC", "TRACKER", "WAVE_STUDY", "DIARY"];
pub(crate) const STUDY_REQUIREMENTS: &[&str] = &[
    "PII_COLLECTION",
    "DOWNLOAD_SOFTWARE",
    "WEBCAM",
    "SENSITIVE_CONTENT",
];
/// Delivery types, and whether accounts may use them.
pub(crate) const DELIVERY_TYPES: &[(&str, bool)] = &[
    ("SLOW", true),
    ("BALANCED", true),
    ("FAST", true),
    ("BURST", false),
    ("UNLIMITED", false),
];
/// Devices a project may allow.
pub(crate) const DEVICES: &[&str] = &["mobile", "desktop", "tablet"];
/// The supplier sources; 100 is everyone's default.
pub(crate) const SOURCES: &[(i64, &str, bool, &str)] = &[
    (100, "Dynata Panel", true, "DEFAULT"),
    (200, "Partner Network", false, "ROUTER"),
];

/// Whether the country is fielded in the language.
pub(crate) fn supports(country: &str, language: &str) -> bool {
    COUNTRIES
        .iter()
        .any(|(code, _, languages)| *code == country && languages.contains(&language))
}

pub(crate) fn countries() -> Vec<Value> {
    COUNTRIES
        .iter()
        .map(|(code, name, languages)| {
            let languages: Vec<Value> = languages
                .iter()
                .map(|language| {
                    let name = LANGUAGES
                        .iter()
                        .find(|(iso, _)| iso == language)
                        .map_or("", |(_, name)| name);
                    json!({"id": language, "isoCode": language, "languageName": name})
                })
                .collect();
            json!({
                "id": code,
                "isoCode": code,
                "countryName": name,
                "supportedLanguages": languages,
            })
        })
        .collect()
}

/// Texts in each language; English is the fallback.
fn localized(language: &str, english: &str) -> String {
    let table: &[(&str, &str, &str, &str, &str)] = &[
        // english, de, fr, ja, es
        ("Gender", "Geschlecht", "Sexe", "性別", "Género"),
        (
            "What is your gender?",
            "Welches Geschlecht haben Sie?",
            "Quel est votre sexe ?",
            "あなたの性別は？",
            "¿Cuál es su género?",
        ),
        ("Male", "Männlich", "Homme", "男性", "Hombre"),
        ("Female", "Weiblich", "Femme", "女性", "Mujer"),
        ("Age", "Alter", "Âge", "年齢", "Edad"),
        (
            "What is your age?",
            "Wie alt sind Sie?",
            "Quel âge avez-vous ?",
            "あなたの年齢は？",
            "¿Qué edad tiene?",
        ),
        ("Region", "Region", "Région", "地域", "Región"),
        (
            "Where do you live?",
            "Wo wohnen Sie?",
            "Où habitez-vous ?",
            "お住まいの地域は？",
            "¿Dónde vive?",
        ),
        (
            "Household income",
            "Haushaltseinkommen",
            "Revenu du foyer",
            "世帯収入",
            "Ingresos del hogar",
        ),
        (
            "Children in household",
            "Kinder im Haushalt",
            "Enfants au foyer",
            "同居している子供の数",
            "Niños en el hogar",
        ),
        (
            "Postal code",
            "Postleitzahl",
            "Code postal",
            "郵便番号",
            "Código postal",
        ),
        (
            "Car ownership",
            "Autobesitz",
            "Possession d'une voiture",
            "自動車の所有",
            "Posesión de coche",
        ),
        ("Yes", "Ja", "Oui", "はい", "Sí"),
        ("No", "Nein", "Non", "いいえ", "No"),
        ("Low", "Niedrig", "Faible", "低", "Bajo"),
        ("Middle", "Mittel", "Moyen", "中", "Medio"),
        ("High", "Hoch", "Élevé", "高", "Alto"),
    ];
    table
        .iter()
        .find(|row| row.0 == english)
        .map(|row| match language {
            "de" => row.1,
            "fr" => row.2,
            "ja" => row.3,
            "es" => row.4,
            _ => row.0,
        })
        .unwrap_or(english)
        .to_owned()
}

fn regions(country: &str) -> &'static [&'static str] {
    match country {
        "US" => &["Northeast", "Midwest", "South", "West"],
        "CA" => &[
            "Atlantic",
            "Quebec",
            "Ontario",
            "Prairies",
            "British Columbia",
        ],
        "GB" => &["England", "Scotland", "Wales", "Northern Ireland"],
        "DE" => &["Nord", "Ost", "Süd", "West"],
        "FR" => &[
            "Île-de-France",
            "Nord-Est",
            "Nord-Ouest",
            "Sud-Est",
            "Sud-Ouest",
        ],
        _ => &["Hokkaido", "Tohoku", "Kanto", "Chubu", "Kansai", "Kyushu"],
    }
}

fn category(language: &str, main: (&str, &str), sub: (&str, &str)) -> Value {
    json!({
        "mainCategory": {"id": main.0, "text": main.1, "localizedText": localized(language, main.1)},
        "subCategory": {"id": sub.0, "text": sub.1, "localizedText": localized(language, sub.1)},
    })
}

fn options(language: &str, texts: &[&str]) -> Vec<Value> {
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({"id": (index + 1).to_string(), "text": text, "localizedText": localized(language, text)})
        })
        .collect()
}

/// The attributes of one country and language; `None` when the country is
/// not fielded in the language.
pub(crate) fn attributes(country: &str, language: &str) -> Option<Vec<Value>> {
    if !supports(country, language) {
        return None;
    }
    let demographic = |sub: (&str, &str)| category(language, ("DEMOGRAPHIC", "Demographic"), sub);
    let attribute = |id: &str, name: &str, question: &str, kind: &str| {
        json!({
            "id": id,
            "name": name,
            "text": question,
            "localizedText": localized(language, question),
            "type": kind,
            "isAllowedInFilters": true,
            "isAllowedInQuotas": true,
            "isAllowedInSurveyAppends": false,
            "state": "ACTIVE",
            "tier": "Standard",
            "exclusions": [],
        })
    };
    let mut gender = attribute("11", "Gender", "What is your gender?", "LIST");
    gender["options"] = Value::from(options(language, &["Male", "Female"]));
    gender["category"] = demographic(("GENDER", "Gender"));

    let mut age = attribute("12", "Age", "What is your age?", "INTEGER_RANGE");
    age["format"] = Value::from("^[0-9]{1,3}-[0-9]{1,3}$");
    age["category"] = demographic(("AGE", "Age"));

    let mut region = attribute("13", "Region", "Where do you live?", "LIST");
    region["options"] = Value::from(options(language, regions(country)));
    region["category"] = category(language, ("GEOGRAPHIC", "Geographic"), ("REGION", "Region"));

    let mut income = attribute("14", "Household income", "Household income", "LIST");
    income["options"] = Value::from(options(language, &["Low", "Middle", "High"]));
    income["category"] = demographic(("INCOME", "Household income"));
    income["tier"] = Value::from("Premium");

    let mut children = attribute("15", "Children", "Children in household", "INTEGER");
    children["format"] = Value::from("^[0-9]{1,2}$");
    children["category"] = demographic(("HOUSEHOLD", "Household"));

    let mut postal = attribute("16", "Postal code", "Postal code", "STRING");
    postal["isAllowedInQuotas"] = Value::from(false);
    postal["category"] = category(
        language,
        ("GEOGRAPHIC", "Geographic"),
        ("POSTAL", "Postal code"),
    );

    let mut car = attribute("17", "Car ownership", "Car ownership", "LIST");
    car["options"] = Value::from(options(language, &["Yes", "No"]));
    car["category"] = category(
        language,
        ("AUTOMOTIVE", "Automotive"),
        ("OWNERSHIP", "Car ownership"),
    );
    car["state"] = Value::from("DEPRECATED");
    car["isAllowedInSurveyAppends"] = Value::from(true);

    Some(vec![gender, age, region, income, children, postal, car])
}

pub(crate) fn survey_topics() -> Vec<Value> {
    SURVEY_TOPICS
        .iter()
        .map(|(topic, description)| json!({"topic": topic, "description": description}))
        .collect()
}

/// One group of sources per country and language.
pub(crate) fn sources() -> Vec<Value> {
    let all_topics: Vec<&str> = SURVEY_TOPICS.iter().map(|(topic, _)| *topic).collect();
    let mut groups = Vec::new();
    for (country, _, languages) in COUNTRIES {
        for language in *languages {
            let sources: Vec<Value> = SOURCES
                .iter()
                .map(|(id, name, default, delivery)| {
                    let topics = if *default {
                        &all_topics[..]
                    } else {
                        &all_topics[..4]
                    };
                    json!({
                        "id": id,
                        "name": name,
                        "default": default,
                        "deliverySystem": delivery,
                        "category": {"surveyTopics": topics},
                    })
                })
                .collect();
            groups.push(json!({
                "countryISOCode": country,
                "languageISOCode": language,
                "sources": sources,
            }));
        }
    }
    groups
}

pub(crate) fn study_metadata() -> Value {
    let items = |ids: &[&str]| -> Vec<Value> {
        ids.iter()
            .map(|id| {
                json!({"id": id, "name": title_case(id), "description": title_case(id), "allowed": true})
            })
            .collect()
    };
    let topics: Vec<&str> = SURVEY_TOPICS.iter().map(|(topic, _)| *topic).collect();
    let deliveries: Vec<Value> = DELIVERY_TYPES
        .iter()
        .map(|(id, allowed)| {
            json!({"id": id, "name": title_case(id), "description": title_case(id), "allowed": allowed})
        })
        .collect();
    json!({
        "category": {
            "studyRequirements": items(STUDY_REQUIREMENTS),
            "studyTypes": items(STUDY_TYPES),
            "surveyTopics": items(&topics),
        },
        "deliveryTypes": deliveries,
    })
}

/// `PII_COLLECTION` → `Pii collection`.
fn title_case(id: &str) -> String {
    let lower = id.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Checks one targeting node of a quota plan against the catalogue for
/// the line item's country and language: the attribute exists, is
/// `ACTIVE`, may be used where it is (a filter or a quota cell), and for a
/// `LIST` the options are its own.
pub(crate) fn check_targeting(
    country: &str,
    language: &str,
    attribute_id: &str,
    options: &[String],
    in_quota: bool,
) -> Result<(), String> {
    let Some(attributes) = attributes(country, language) else {
        return Ok(()); // the country/language problem is reported on its own
    };
    let Some(attribute) = attributes.iter().find(|a| a["id"] == attribute_id) else {
        return Err(format!(
            "attribute {attribute_id:?} does not exist for {country}/{language}"
        ));
    };
    if attribute["state"] != "ACTIVE" {
        return Err(format!(
            "attribute {attribute_id:?} is {} and cannot be targeted",
            attribute["state"].as_str().unwrap_or_default()
        ));
    }
    let allowed_in = if in_quota {
        "isAllowedInQuotas"
    } else {
        "isAllowedInFilters"
    };
    if attribute[allowed_in] != true {
        return Err(format!(
            "attribute {attribute_id:?} cannot be used in {}",
            if in_quota { "quotas" } else { "filters" }
        ));
    }
    if let Some(known) = attribute["options"].as_array() {
        for option in options {
            if !known.iter().any(|known| known["id"] == option.as_str()) {
                return Err(format!(
                    "option {option:?} is not an option of attribute {attribute_id:?}"
                ));
            }
        }
    }
    Ok(())
}
