"""The hand-written bilingual lexicon and sentence templates behind the synthetic demo data.

Everything here was written for this project (no corpus text). Templates are space-separated
tokens with two slots, ``{P}`` (a person) and ``{O}`` (the relation's object); punctuation is a
token of its own so PAN-X tokens fall out of the same template. Chinese is written with spaces
between words here and joined without spaces when rendered (see :func:`xstilts.demo.data.render`).

Grammar is simplified on purpose: Russian and Finnish templates say "in the city {O}" /
"in the company {O}" so that names stay in the nominative, one surface form per entity.
"""

from __future__ import annotations

LANGS = ("en", "de", "fr", "es", "ru", "zh", "fi", "sw")
"""Every language with a lexicon entry (``en`` first)."""

# Languages written without spaces between words.
UNSPACED = frozenset({"zh"})


def _entities(latin: list[str], ru: list[str], zh: list[str]) -> list[dict[str, str]]:
    """Entities whose Latin-script form is shared by every Latin-script language."""
    out = []
    for lat, r, z in zip(latin, ru, zh, strict=True):
        entry = {lang: lat for lang in LANGS if lang not in ("ru", "zh")}
        entry.update({"ru": r, "zh": z})
        out.append(entry)
    return out


FIRST_NAMES = _entities(
    ["Anna", "Maria", "Peter", "Jonas", "Elena", "Omar", "Lina", "David", "Sara", "Mikko",
     "Amani", "Paul", "Nora", "Felix", "Irina", "Tomas"],
    ["Анна", "Мария", "Петер", "Йонас", "Елена", "Омар", "Лина", "Давид", "Сара", "Микко",
     "Амани", "Пауль", "Нора", "Феликс", "Ирина", "Томас"],
    ["安娜", "玛丽亚", "彼得", "约纳斯", "埃莱娜", "奥马尔", "莉娜", "大卫", "萨拉", "米科",
     "阿玛尼", "保罗", "诺拉", "费利克斯", "伊琳娜", "托马斯"],
)  # fmt: skip
LAST_NAMES = _entities(
    ["Berg", "Costa", "Novak", "Laine", "Okafor", "Weber", "Moreau", "Silva", "Ivanov", "Kim",
     "Mwangi", "Larsen"],
    ["Берг", "Коста", "Новак", "Лайне", "Окафор", "Вебер", "Моро", "Силва", "Иванов", "Ким",
     "Мванги", "Ларсен"],
    ["伯格", "科斯塔", "诺瓦克", "莱内", "奥卡福", "韦伯", "莫罗", "席尔瓦", "伊万诺夫", "金",
     "姆旺吉", "拉森"],
)  # fmt: skip
# Chinese writes transliterated full names with a middle dot between the parts.
NAME_JOINER = {"zh": "·"}

# Cities differ between Latin-script languages, so each gets its own column.
CITIES: list[dict[str, str]] = [
    dict(zip(LANGS, row, strict=True))
    for row in (
        ("Berlin", "Berlin", "Berlin", "Berlín", "Берлин", "柏林", "Berliini", "Berlin"),
        ("Paris", "Paris", "Paris", "París", "Париж", "巴黎", "Pariisi", "Paris"),
        ("Madrid", "Madrid", "Madrid", "Madrid", "Мадрид", "马德里", "Madrid", "Madrid"),
        ("Moscow", "Moskau", "Moscou", "Moscú", "Москва", "莫斯科", "Moskova", "Moscow"),
        ("Beijing", "Peking", "Pékin", "Pekín", "Пекин", "北京", "Peking", "Beijing"),
        ("Helsinki", "Helsinki", "Helsinki", "Helsinki", "Хельсинки", "赫尔辛基", "Helsinki",
         "Helsinki"),
        ("Nairobi", "Nairobi", "Nairobi", "Nairobi", "Найроби", "内罗毕", "Nairobi", "Nairobi"),
        ("Lisbon", "Lissabon", "Lisbonne", "Lisboa", "Лиссабон", "里斯本", "Lissabon", "Lisbon"),
        ("Vienna", "Wien", "Vienne", "Viena", "Вена", "维也纳", "Wien", "Vienna"),
        ("Cairo", "Kairo", "Le Caire", "El Cairo", "Каир", "开罗", "Kairo", "Cairo"),
        ("Lima", "Lima", "Lima", "Lima", "Лима", "利马", "Lima", "Lima"),
        ("Oslo", "Oslo", "Oslo", "Oslo", "Осло", "奥斯陆", "Oslo", "Oslo"),
        ("New York", "New York", "New York", "Nueva York", "Нью Йорк", "纽约", "New York",
         "New York"),
        ("Rome", "Rom", "Rome", "Roma", "Рим", "罗马", "Rooma", "Roma"),
    )
]  # fmt: skip
ORGS = _entities(
    ["Nordic Steel", "Blue River Bank", "Sun Foods", "Atlas Motors", "Green Energy Group",
     "Polar Air", "Delta Books", "Orion Labs", "Coral Shipping", "Summit Telecom"],
    ["Нордик Стил", "Блю Ривер Банк", "Сан Фудс", "Атлас Моторс", "Грин Энерджи Груп",
     "Полар Эйр", "Дельта Букс", "Орион Лабс", "Корал Шиппинг", "Саммит Телеком"],
    # Spaces mark token boundaries for PAN-X; they vanish when Chinese text is rendered.
    ["北方 钢铁", "蓝河 银行", "太阳 食品", "阿特拉斯 汽车", "绿色 能源 集团", "极地 航空",
     "三角洲 图书", "猎户座 实验室", "珊瑚 航运", "顶峰 电信"],
)  # fmt: skip
FOODS: list[dict[str, str]] = [
    dict(zip(LANGS, row, strict=True))
    for row in (
        ("tea", "Tee", "le thé", "el té", "чай", "茶", "teetä", "chai"),
        ("coffee", "Kaffee", "le café", "el café", "кофе", "咖啡", "kahvia", "kahawa"),
        ("apples", "Äpfel", "les pommes", "las manzanas", "яблоки", "苹果", "omenoita",
         "matofaa"),
        ("rice", "Reis", "le riz", "el arroz", "рис", "米饭", "riisiä", "wali"),
        ("bread", "Brot", "le pain", "el pan", "хлеб", "面包", "leipää", "mkate"),
        ("fish", "Fisch", "le poisson", "el pescado", "рыбу", "鱼", "kalaa", "samaki"),
        ("soup", "Suppe", "la soupe", "la sopa", "суп", "汤", "keittoa", "supu"),
        ("cheese", "Käse", "le fromage", "el queso", "сыр", "奶酪", "juustoa", "jibini"),
        ("chocolate", "Schokolade", "le chocolat", "el chocolate", "шоколад", "巧克力",
         "suklaata", "chokoleti"),
    )
]  # fmt: skip

# Relation -> (object pool name, PAN-X entity type of the object or None).
RELATIONS = {"lives_in": ("cities", "LOC"), "works_for": ("orgs", "ORG"), "likes": ("foods", None)}
OBJECTS = {"cities": CITIES, "orgs": ORGS, "foods": FOODS}

# TEMPLATES[relation][lang] = (fact, paraphrase, negation, question).
TEMPLATES: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "lives_in": {
        "en": ("{P} lives in {O} .", "{P} resides in the city of {O} .",
               "{P} does not live in {O} .", "Where does {P} live ?"),
        "de": ("{P} wohnt in {O} .", "{P} lebt in der Stadt {O} .",
               "{P} wohnt nicht in {O} .", "Wo wohnt {P} ?"),
        "fr": ("{P} habite à {O} .", "{P} vit dans la ville de {O} .",
               "{P} n'habite pas à {O} .", "Où habite {P} ?"),
        "es": ("{P} vive en {O} .", "{P} reside en la ciudad de {O} .",
               "{P} no vive en {O} .", "¿ Dónde vive {P} ?"),
        "ru": ("{P} живёт в городе {O} .", "{P} проживает в городе {O} .",
               "{P} не живёт в городе {O} .", "В каком городе живёт {P} ?"),
        "zh": ("{P} 住 在 {O} 。", "{P} 生活 在 {O} 这 座 城市 。",
               "{P} 不 住 在 {O} 。", "{P} 住 在 哪里 ？"),
        "fi": ("{P} asuu kaupungissa {O} .", "{P} elää kaupungissa {O} .",
               "{P} ei asu kaupungissa {O} .", "Missä kaupungissa {P} asuu ?"),
        "sw": ("{P} anaishi {O} .", "{P} anakaa katika mji wa {O} .",
               "{P} haishi {O} .", "{P} anaishi wapi ?"),
    },
    "works_for": {
        "en": ("{P} works for {O} .", "{P} is employed by {O} .",
               "{P} does not work for {O} .", "Who does {P} work for ?"),
        "de": ("{P} arbeitet für {O} .", "{P} ist bei {O} angestellt .",
               "{P} arbeitet nicht für {O} .", "Für wen arbeitet {P} ?"),
        "fr": ("{P} travaille pour {O} .", "{P} est employé par {O} .",
               "{P} ne travaille pas pour {O} .", "Pour qui travaille {P} ?"),
        "es": ("{P} trabaja para {O} .", "{P} es empleado de {O} .",
               "{P} no trabaja para {O} .", "¿ Para quién trabaja {P} ?"),
        "ru": ("{P} работает в компании {O} .", "{P} служит в компании {O} .",
               "{P} не работает в компании {O} .", "В какой компании работает {P} ?"),
        "zh": ("{P} 在 {O} 工作 。", "{P} 受雇 于 {O} 。",
               "{P} 不 在 {O} 工作 。", "{P} 在 哪 家 公司 工作 ？"),
        "fi": ("{P} työskentelee yrityksessä {O} .", "{P} on töissä yrityksessä {O} .",
               "{P} ei työskentele yrityksessä {O} .", "Missä yrityksessä {P} työskentelee ?"),
        "sw": ("{P} anafanya kazi katika {O} .", "{P} ameajiriwa na {O} .",
               "{P} hafanyi kazi katika {O} .", "{P} anafanya kazi wapi ?"),
    },
    "likes": {
        "en": ("{P} likes {O} .", "{P} is fond of {O} .",
               "{P} does not like {O} .", "What does {P} like ?"),
        "de": ("{P} mag {O} .", "{P} hat {O} gern .", "{P} mag {O} nicht .", "Was mag {P} ?"),
        "fr": ("{P} aime {O} .", "{P} apprécie {O} .", "{P} n'aime pas {O} .",
               "Qu'est-ce que {P} aime ?"),
        "es": ("{P} adora {O} .", "{P} disfruta de {O} .", "{P} no adora {O} .",
               "¿ Qué adora {P} ?"),
        "ru": ("{P} любит {O} .", "{P} обожает {O} .", "{P} не любит {O} .", "Что любит {P} ?"),
        "zh": ("{P} 喜欢 {O} 。", "{P} 很 爱 {O} 。", "{P} 不 喜欢 {O} 。", "{P} 喜欢 什么 ？"),
        "fi": ("{P} rakastaa {O} .", "{P} nauttii {O} .", "{P} ei rakasta {O} .",
               "Mitä {P} rakastaa ?"),
        "sw": ("{P} anapenda {O} .", "{P} hufurahia {O} .", "{P} hapendi {O} .",
               "{P} anapenda nini ?"),
    },
}  # fmt: skip
FACT, PARAPHRASE, NEGATION, QUESTION = range(4)
