"""Bilingual (Korean/English) lexicon of the local vectorizer: data only, no logic.

Every entry is a regular-expression fragment matched against lower-cased, NFKC-normalized
text. English fragments are wrapped by `en()` so they only match whole Latin words (Hangul
counts as a boundary, so "netflix보는" still finds "netflix"); Korean fragments are raw
because Korean attaches particles directly to words ("엄마한테", "요가할"). Fragments that
are also parts of unrelated words carry lookarounds (딸 but not 딸기, 이모 but not 이모티콘).

Codes are the contract's codes (recommender.schema); this module only says which words mean
which code.
"""

from __future__ import annotations

FEMALE, MALE, NEUTRAL = 1, 2, 0


def en(*words: str) -> tuple[str, ...]:
    """Whole-word English fragments (Latin letters on neither side)."""
    return tuple(rf"(?<![a-z])(?:{w})(?![a-z])" for w in words)


def ko(*words: str) -> tuple[str, ...]:
    return tuple(words)


# --------------------------------------------------------------------------- interests
# For each interest code: "product" = a named product type (the catalog's or a close kind),
# which decides the slot on its own; "strong" = hobbies/uses that clearly mean the interest;
# "weak" = words that lean that way but are generic. Scoring lives in local.py.

INTERESTS: dict[int, dict[str, tuple[str, ...]]] = {
    1: {  # music
        "product": ko("이어폰", "헤드폰", "헤드셋", "에어팟", "버즈", "블루투스\\s?스피커", "스피커", "노이즈\\s?캔슬링", "노캔", "턴테이블")
        + en("earbuds?", "ear ?phones?", "head ?phones?", "headsets?", "airpods?", "galaxy buds", "buds",
             "(?:bluetooth )?speakers?", "noise[- ]cancell?(?:ing|ation)", "turntable", "in-ears?"),
        "strong": ko("음악", "음감", "노래", "케이팝", "아이돌", "콘서트", "팟캐스트", "피아노", "드럼", "바이올린", "첼로",
                     "통기타", "일렉\\s?기타", "기타\\s?(?:를|치|연주|레슨|연습)", "우쿨렐레", "악기", "작곡", "디제잉", "힙합",
                     "클래식", "재즈", "멜론", "스포티파이", "플레이리스트", "(?<!스마트)(?<!스마트 )밴드(?!\\s?(?:형|워치))", "덕질")
        + en("music", "musical", "songs?", "singing", "sings?", "k-?pop", "kpop", "podcasts?", "guitars?",
             "guitarist", "piano", "pianist", "drums?", "drummer", "violin", "cello", "concerts?", "band",
             "playlists?", "spotify", "vinyl", "jazz", "hip-?hop", "classical", "ukulele", "dj(?:ing)?", "audiophile",
             "melodies", "idols?"),
        "weak": ko("듣는", "들을", "듣기", "들으") + en("listen(?:s|ing)?"),
    },
    2: {  # fitness
        "product": ko("스마트\\s?워치", "애플\\s?워치", "갤럭시\\s?워치", "스마트\\s?밴드", "미밴드", "핏빗", "가민", "러닝\\s?머신")
        + en("smart ?watch(?:es)?", "apple watch", "galaxy watch", "fitness (?:tracker|band|watch)", "fitbit", "garmin",
             "activity tracker", "treadmill"),
        "strong": ko("운동", "헬스", "헬쓰", "(?<!딥)(?<!딥 )(?<!머신)(?<!머신 )(?<!e)러닝(?!\\s?머신)", "달리기", "조깅", "마라톤",
                     "필라테스", "요가", "등산", "산행", "트레킹", "수영", "자전거", "라이딩", "사이클", "크로스핏", "홈트",
                     "다이어트", "축구", "농구", "야구", "테니스", "골프", "배드민턴", "클라이밍", "볼링", "스키", "스노\\s?보드",
                     "스노우\\s?보드", "근력", "웨이트", "스쿼트", "피티", "스포츠", "체육", "만보", "걷기", "러너", "트레이닝")
        + en("running", "runner", "runs", "jog(?:ging)?", "marathons?", "pilates", "yoga", "hik(?:e|es|ing|er)",
             "gym", "work ?outs?", "working out", "exercis(?:e|es|ing)", "fitness", "swim(?:s|ming|mer)?",
             "cycling", "cyclist", "bik(?:e|ing)", "crossfit", "weight ?lifting", "lifting", "soccer", "football",
             "basketball", "baseball", "tennis", "golf(?:er|ing)?", "badminton", "climbing", "bouldering", "ski(?:ing)?",
             "snowboard(?:ing)?", "sports?", "athlete", "athletic", "triathlon", "training", "heart rate",
             "steps", "calories", "diet(?:ing)?", "trail running", "personal trainer"),
        "weak": ko("산책", "스트레칭") + en("run", "walks?", "walking", "stretching", "active"),
    },
    3: {  # work & study
        "product": ko("노트북", "랩탑", "맥북", "그램", "울트라북", "모니터", "키보드")
        + en("laptops?", "macbook", "notebook computer", "ultrabook", "chromebook", "monitor", "keyboard"),
        "strong": ko("공부", "과제", "리포트", "레포트", "논문", "인강", "강의", "수업", "수험", "시험", "코딩", "개발",
                     "프로그래밍", "딥러닝", "머신\\s?러닝", "업무", "사무", "재택", "출근", "직장에서", "회사에서", "문서",
                     "엑셀", "화상\\s?회의", "자격증", "취준", "필기", "학업", "숙제")
        + en("coding", "codes?", "programm(?:ing|er)", "developer", "software", "study(?:ing)?", "studies", "homework",
             "coursework", "assignments?", "thesis", "essays?", "lectures?", "online classes", "classes", "exams?",
             "office", "remote work", "work from home", "wfh", "spreadsheets?", "excel", "reports?", "zoom meetings?",
             "meetings", "school ?work", "note-?taking", "college applications?", "for school", "business"),
        "weak": ko("작업", "학교\\s?(?:에서|용|숙제)") + en("work(?! ?outs?)(?:ing)?(?! out)", "school", "students?", "notebook"),
    },
    4: {  # video & drawing
        "product": ko("태블릿", "아이패드", "갤럭시\\s?탭", "갤탭", "드로잉\\s?패드", "애플\\s?펜슬", "빔\\s?프로젝터", "프로젝터")
        + en("tablets?", "ipads?", "galaxy tab", "drawing pad", "apple pencil", "stylus", "projector"),
        "strong": ko("넷플릭스", "넷플", "유튜브", "유튭", "드라마", "영화", "애니", "웹툰", "만화(?!책)", "그림", "드로잉",
                     "일러스트", "스케치", "미술", "영상\\s?편집", "영상\\s?시청", "디즈니\\s?플러스", "티빙", "왓챠",
                     "ott", "정주행", "디자인", "그리는", "그려", "그릴", "페인팅")
        + en("netflix", "youtube", "dramas?", "k-?dramas?", "movies?", "films?", "anime", "cartoons?", "webtoons?",
             "drawing", "draws?", "sketch(?:ing|es)?", "illustrat(?:ion|ions|or|ing)", "paint(?:ing|s)?", "art",
             "artist", "digital art", "procreate", "video editing", "edit(?:s|ing)? videos?", "streaming",
             "watch(?:es|ing)? (?:movies|videos|youtube|netflix|dramas|shows|tv|anime)", "binge", "tv shows?",
             "disney\\+?", "animation", "design(?:er|ing)?"),
        "weak": ko("영상", "동영상") + en("videos?", "shows", "tv", "watching"),
    },
    5: {  # gaming
        "product": ko("게임기", "콘솔", "닌텐도", "스위치", "플스\\s?\\d?", "플레이\\s?스테이션", "엑스\\s?박스", "엑박",
                      "스팀\\s?덱", "게이밍\\s?패드", "vr")
        + en("consoles?", "game consoles?", "nintendo(?: switch)?", "switch(?: oled| lite)?", "ps[45]", "playstation\\s?\\d?",
             "xbox", "steam deck", "controller", "vr headset"),
        "strong": ko("게임", "겜", "게이머", "게이밍", "배그", "롤(?![가-힣])", "피파", "오버워치", "포켓몬", "마리오", "e스포츠")
        + en("games?", "gaming", "gamers?", "video ?games?", "esports?", "fortnite", "minecraft", "pokemon", "mario",
             "zelda", "league of legends", "steam"),
        "weak": en("plays"),
    },
    6: {  # photography & travel
        "product": ko("카메라", "미러리스", "dslr", "액션\\s?캠", "고프로", "드론", "캠코더", "필름\\s?카메라")
        + en("cameras?", "mirrorless", "dslr", "gopro", "action cam(?:era)?", "drones?", "camcorder", "lens(?:es)?"),
        "strong": ko("사진", "출사", "여행", "브이로그", "촬영", "풍경", "배낭", "해외\\s?여행", "신혼\\s?여행", "셀카",
                     "인스타", "찍는", "찍을", "찍으")
        + en("photo(?:s|graphy|grapher)?", "pictures", "travel(?:s|ing|ling|er|ler)?", "trips?", "vlogs?", "vlogging",
             "vlogger", "backpacking", "sightseeing", "landscapes?", "instagram", "selfies?", "honeymoon",
             "photo walks?", "shoot(?:ing)? (?:photos|pictures|videos)", "taking photos"),
        "weak": ko("캠핑", "나들이") + en("camping", "abroad", "journey"),
    },
    7: {  # reading
        "product": ko("전자책", "이북\\s?리더", "e\\s?북\\s?리더", "리더기", "킨들", "크레마", "오닉스")
        + en("e-?readers?", "kindle", "kobo", "e-?ink", "e-?book readers?"),
        "strong": ko("독서", "책(?!상|임|장님)", "소설", "웹소설", "만화책", "이북", "e북", "도서", "문학", "시집", "밀리의\\s?서재",
                     "리디", "읽는", "읽기", "읽어", "읽을", "책벌레")
        + en("reading", "reads", "read books", "books?", "novels?", "bookworm", "e-?books?", "literature", "library",
             "manga", "comics", "audiobooks?", "poetry", "book ?club"),
        "weak": en("read"),
    },
    8: {  # cooking & home
        "product": ko("에어\\s?프라이어", "에프", "전자레인지", "오븐", "믹서기", "블렌더", "밥솥", "커피\\s?머신", "토스터",
                      "청소기", "로봇\\s?청소기", "식기\\s?세척기")
        + en("air ?fryers?", "ovens?", "blenders?", "rice cookers?", "coffee machines?", "espresso machines?",
             "toasters?", "vacuum(?: cleaner)?", "dishwasher", "microwave", "stand mixer", "kitchen appliances?"),
        "strong": ko("요리", "베이킹", "제과", "제빵", "쿠킹", "살림", "주방", "부엌", "집밥", "혼밥", "튀김", "레시피",
                     "밀키트", "집들이", "신혼\\s?살림", "홈카페", "자취")
        + en("cook(?:s|ing)?", "baking", "bak(?:e|es|er)", "kitchen", "recipes?", "chef", "home ?cook(?:ing)?",
             "housework", "chores", "meal ?prep", "housewarming", "homemaker", "household", "home cafe", "bread",
             "pastr(?:y|ies)", "fried food"),
        "weak": ko("빵", "가전", "청소", "(?<![가-힣])이사(?!님)", "새집") + en("food", "coffee", "home appliances?", "moving", "new apartment"),
    },
    9: {  # beauty
        "product": ko("헤어\\s?드라이어", "헤어\\s?드라이기", "드라이기", "고데기", "에어랩", "다이슨\\s?드라이", "매직기",
                      "화장품", "향수", "미용\\s?기기", "피부\\s?관리기", "led\\s?마스크")
        + en("hair ?dryers?", "blow ?dryers?", "straighteners?", "curling irons?", "curlers?", "airwrap",
             "cosmetics", "perfumes?", "led mask", "beauty devices?"),
        "strong": ko("피부", "화장(?!실)", "메이크업", "스킨\\s?케어", "뷰티", "미용", "헤어", "머리\\s?(?:말리|손질|스타일)",
                     "네일", "꾸미기", "꾸미는", "탈모", "두피", "모공", "향수")
        + en("skin ?care", "skin", "make ?-?up", "beauty", "hair(?: ?care| styling| style)?", "hairstyl(?:e|es|ing)",
             "nails?", "manicure", "grooming", "salon", "fragrance", "scalp", "complexion", "glow"),
        "weak": ko("외모", "관리") + en("looks", "pampering"),
    },
    10: {  # health & relaxation
        "product": ko("안마기", "마사지기", "마사지\\s?건", "안마\\s?의자", "마사지\\s?의자", "찜질기", "온열\\s?매트",
                      "족욕기", "목\\s?안마기", "전기\\s?찜질")
        + en("massagers?", "massage (?:gun|chair|device|cushion)s?", "heating pads?", "foot spa", "foot massager",
             "neck massager", "percussion gun"),
        "strong": ko("안마", "마사지", "허리", "어깨", "결림", "뭉친", "뭉침", "통증", "거북목", "목\\s?디스크", "디스크",
                     "목이\\s?아프", "관절", "무릎", "피로", "피곤", "스트레스", "불면", "수면", "숙면", "잠을", "잠이", "못\\s?자",
                     "휴식", "힐링", "찜질", "지압", "족욕", "혈액\\s?순환", "릴렉스", "쉬고", "편하게\\s?쉬", "명상")
        + en("massage", "back ?pain", "shoulders?", "neck", "pain", "aches?", "aching", "sore(?:ness)?",
             "stiff(?:ness)?", "tension", "stress(?:ed|ful)?", "sleep(?:ing|less)?", "asleep", "insomnia", "tired",
             "fatigue", "exhausted", "relax(?:ing|ation)?", "unwind", "wellness", "health", "knees?", "joints?",
             "meditation", "spa", "circulation", "recovery", "burn ?out"),
        "weak": ko("아프", "아파", "건강", "쉬는") + en("rest", "calm", "back"),
    },
}

# --------------------------------------------------------------------------- people
# Relational people: who the product is for (or who the speaker is, "I'm a dad"). Gendered
# terms follow the contract's lists plus obvious variants and common typos; neutral people are
# recipients without a gender. Any of them, not described as the speaker, suggests a gift.
PEOPLE: dict[int, tuple[str, ...]] = {
    FEMALE: ko("엄마", "어머니", "어머님", "어무니", "와이프", "아내", "마누라", "여자\\s?친구", "여\\s?친", "여사친",
               "(?<![가-힣])딸(?!기)", "따님", "손녀", "언니", "누나", "여동생", "할머니", "할머님", "할매",
               "이모(?!티콘|지|부)", "고모(?!부)", "숙모", "외숙모", "장모님", "장모", "시어머니", "시어머님", "며느리",
               "조카딸", "형수")
    + en("mom", "mum", "mommy", "mother", "mother-in-law", "mothers-in-law", "wife", "girl ?friend", "girl ?freind",
         "gf", "daughters?", "sisters?", "sis", "grandmother", "grandma", "granny", "nana", "aunt", "auntie",
         "niece", "granddaughters?", "stepdaughter", "stepmom", "fiancee", "bride"),
    MALE: ko("아빠", "아버지", "아버님", "남편", "신랑", "남자\\s?친구", "남\\s?친", "남사친", "아들", "아드님", "손자",
             "(?:(?<![가-힣])|(?<=친)|(?<=우리 ))형(?=님|이|한테|에게|께|은|도|을|\\s|,|$|생일|선물)", "형부", "오빠", "남동생",
             "할아버지", "할아버님", "할배", "삼촌", "외삼촌", "이모부", "고모부", "장인어른", "(?<![가-힣])장인", "시아버지", "시아버님",
             "사위", "제부", "매형", "처남")
    + en("dad", "daddy", "papa", "father", "father-in-law", "fathers-in-law", "husband", "hubby", "boy ?friend",
         "boy ?freind", "bf", "sons?", "brothers?", "bro", "grandfather", "grandpa", "granddad", "uncle", "nephew",
         "grandsons?", "stepson", "stepdad", "fiance", "groom"),
    NEUTRAL: ko("부모님", "부모", "시부모님", "조카(?!딸)", "(?<!여자)(?<!남자)(?<!여자 )(?<!남자 )친구", "동료",
                "선생님", "선배", "후배", "상사", "팀장님", "부장님", "사장님", "교수님", "(?<!여)(?<!남)동생",
                "(?<![가-힣])아이(?!패드|폰|돌|디어|템|스크림|콘)", "애기", "아기", "손주", "자녀", "지인", "거래처",
                "친척", "사촌", "조부모님", "어르신")
    + en("parents", "grandparents", "friends?", "friend's", "co-?workers?", "colleagues?", "boss", "teachers?",
         "kids?", "child", "child's", "children", "in-laws", "roommates?", "neighbou?rs?", "partner", "baby",
         "grandkids?", "grandchild(?:ren)?", "clients?", "mentor", "professor", "cousin"),
}
# Explicit gender words: say the user's gender, but not that someone else is the user.
GENDER_WORDS: dict[int, tuple[str, ...]] = {
    FEMALE: ko("여자", "여성", "아줌마", "아가씨", "여고생", "여중생", "여대생", "소녀", "여학생")
    + en("woman", "women", "female", "girls?", "lady", "ladies", "madam", "gal"),
    MALE: ko("남자", "남성", "아저씨", "남고생", "남중생", "소년", "남학생")
    + en("man", "men", "male", "guy", "boys?", "gentleman", "dude"),
}
# Pronouns are weaker evidence than nouns: used only when no gendered noun is found.
PRONOUNS: dict[int, tuple[str, ...]] = {
    FEMALE: en("she", "she's", "her", "hers", "herself"),
    MALE: en("he", "he's", "him", "his", "himself"),
}

# --------------------------------------------------------------------------- ages
AGE_MILESTONES: tuple[tuple[str, int], ...] = (
    ("환갑", 60), ("회갑", 60), ("진갑", 61), ("칠순", 70), ("고희", 70), ("팔순", 80), ("구순", 90),
)
LIFE_STAGES: tuple[tuple[str, int], ...] = (
    ("초등학생|초등학교|초등|초딩", 10),
    ("중학생|중학교|중딩|여중생|남중생", 14),
    ("고등학생|고등학교|고등|고딩|고[123](?!\\d)|여고생|남고생", 17),
    ("대학생|대딩|여대생|대학\\s?신입생|대학교\\s?(?:신입생|입학|1학년|새내기)", 21),
    (r"(?<![a-z])(?:elementary[ -]school(?:er|ers| student| kid)?|grade[ -]schooler|primary[ -]school(?:er| student)?)(?![a-z])", 10),
    (r"(?<![a-z])(?:middle[ -]school(?:er|ers| student| kid)?|junior high(?: student)?)(?![a-z])", 14),
    (r"(?<![a-z])(?:high[ -]?school(?:er|ers| student| kid)?)(?![a-z])(?! (?:teacher|graduate|reunion|sweetheart))", 17),
    (r"(?<![a-z])(?:college (?:student|freshman|kid|sophomore)s?|university student|uni student|undergrad(?:uate)?|"
     r"(?:in|to|starting|started|entering|starts|start|for) college|college-bound)(?![a-z])", 21),
)
# English tens for "thirties", "thirty-something", "sixty-year-old".
EN_TENS = {"ten": 10, "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
           "seventy": 70, "eighty": 80, "ninety": 90}
EN_DECADE_WORDS = {"teens": 10, "twenties": 20, "thirties": 30, "forties": 40, "fifties": 50, "sixties": 60,
                   "seventies": 70, "eighties": 80, "nineties": 90}
EN_UNITS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
EN_TEENS = {"eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
            "seventeen": 17, "eighteen": 18, "nineteen": 19}
DECADE_OFFSETS = {"초반": 2, "초": 2, "중반": 5, "중": 5, "후반": 8, "후": 8, "말": 8, "early": 2, "mid": 5,
                  "late": 8, None: 5}
# Native Korean numbers for ages ("스물다섯 살", "서른 살").
KO_NATIVE_TENS = {"열": 10, "스물": 20, "스무": 20, "서른": 30, "마흔": 40, "쉰": 50, "예순": 60, "일흔": 70,
                  "여든": 80, "아흔": 90}
KO_NATIVE_UNITS = {"한": 1, "하나": 1, "두": 2, "둘": 2, "세": 3, "셋": 3, "네": 4, "넷": 4, "다섯": 5, "여섯": 6,
                   "일곱": 7, "여덟": 8, "아홉": 9}
# Sino-Korean digits and multipliers for amounts written in words ("오십만원", "백오십만원").
KO_DIGITS = {"일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "칠": 7, "팔": 8, "구": 9}
KO_SMALL_UNITS = {"십": 10, "백": 100, "천": 1000}
KO_BIG_UNITS = {"만": 10_000, "억": 100_000_000}

# --------------------------------------------------------------------------- money
AMOUNT_UNITS = {"억": 100_000_000, "천만": 10_000_000, "백만": 1_000_000, "십만": 100_000, "만": 10_000,
                "천": 1_000, "k": 1_000, "thousand": 1_000, "m": 1_000_000, "mil": 1_000_000,
                "million": 1_000_000, "mn": 1_000_000}
# Words before a bare number that make it a budget ("under 300,000", "spend like 300k").
BUDGET_CONTEXT = en("budget", "under", "up to", "upto", "max(?:imum)?", "at most", "around", "about", "less than",
                    "below", "within", "spend(?:ing)?", "limit", "no more than", "nothing over", "not over",
                    "over", "price", "cost", "roughly", "approx(?:imately)?", "arround", "aroud", "cap") + ko("예산", "최대")

# --------------------------------------------------------------------------- seasons
SEASON_WORDS: tuple[tuple[str, int], ...] = (
    # occasions first: they are longer and contain season words with the same answer anyway
    ("크리스마스|성탄절|연말|새해|신년|설날|설\\s?연휴|구정|설\\s?명절|발렌타인|밸런타인|겨울\\s?방학|겨울\\s?휴가", 4),
    ("어버이\\s?날|어린이\\s?날|화이트\\s?데이|벚꽃|스승의\\s?날|로즈\\s?데이|봄\\s?방학|봄\\s?소풍", 1),
    ("여름\\s?휴가|여름\\s?방학|휴가철|바캉스|초복|중복|말복", 2),
    ("추석|한가위|할로윈|핼러윈|빼빼로\\s?데이", 3),
    (r"(?<![a-z])(?:christmas|x-?mas|(?:lunar )?new year(?:'s)?|seollal|valentine(?:'s)?(?: day)?|winter (?:break|vacation|holidays?)|holiday season|the holidays)(?![a-z])", 4),
    (r"(?<![a-z])(?:parents'? day|children'?s day|white day|cherry blossoms?|mother'?s day|easter)(?![a-z])", 1),
    (r"(?<![a-z])(?:summer (?:vacation|break|holidays?)|father'?s day)(?![a-z])", 2),
    (r"(?<![a-z])(?:chuseok|korean thanksgiving|thanksgiving|halloween|black friday)(?![a-z])", 3),
    # season words
    ("(?:(?<![가-힣])|(?<=올)|(?<=늦)|(?<=초)|(?<=이번))봄", 1),
    ("여름", 2),
    ("가을", 3),
    ("겨울", 4),
    (r"(?<![a-z])(?:spring)(?![a-z])", 1),
    (r"(?<![a-z])(?:summer(?:time)?)(?![a-z])", 2),
    (r"(?<![a-z])(?:autumn|(?:this|next|last|in the|for|the|early|late|coming|during) fall|fall (?:season|semester|break|sale|weather|term))(?![a-z])", 3),
    (r"(?<![a-z])(?:winter(?:time)?)(?![a-z])", 4),
    # English months; "may" only where it cannot be the verb
    (r"(?<![a-z])(?:december|dec|january|jan|february|feb)(?![a-z])", 4),
    (r"(?<![a-z])(?:march|april|apr|(?:in|this|next|early|late|mid|of|until|by|last) may|may \d)(?![a-z])", 1),
    (r"(?<![a-z])(?:june|jun|july|jul|august|aug)(?![a-z])", 2),
    (r"(?<![a-z])(?:september|sept?|october|oct|november|nov)(?![a-z])", 3),
)
MONTH_SEASON = {12: 4, 1: 4, 2: 4, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2, 9: 3, 10: 3, 11: 3}

# --------------------------------------------------------------------------- purpose
GIFT_WORDS = ko("선물", "사\\s?주(?:려|고|기|면|는|실|셔|었|겠|자|ㄹ)", "사\\s?줄", "사\\s?줘야", "사\\s?드(?:리|릴|려|림)",
                "챙겨\\s?(?:주|드)", "보내\\s?드", "생신", "효도", "답례", "퇴사\\s?선물",
                "(?<!부탁)(?<!말씀)(?<!감사)(?<!연락)(?<!안내)(?<!문의)드(?:리려|릴려|릴\\s?(?:거|것|만한|선물|물건|제품|용|까)|리고\\s?싶|려야|리면)",
                "(?<![가-힣])(?:주려고|줄려고|주려구|줄려구|줄\\s?(?:거|것|선물|만한))")
GIFT_WORDS_EN = en("gifts?", "gifting", "presents?", "surprise", "stocking stuffer", "for (?:her|him|them)",
                   "(?:get|buy|getting|buying) (?:her|him|them|my)", "to give")
# A gift to oneself is own use.
SELF_GIFT = ko("셀프\\s?(?:생일\\s?)?선물", "(?:나|저|내|제)(?:에게|한테|자신에게|한테 주는|에게 주는)?\\s?주는\\s?(?:생일\\s?)?선물",
               "(?:나|저)를\\s?위한\\s?선물") + en("(?:gifts?|presents?|treat) (?:for|to) (?:me|myself)", "treat(?:ing)? myself",
                                                 "self[- ]gift")
SELF_STRONG = ko("(?:제가|내가|저|나|제|내)\\s?(?:쓸|쓰|사용|써|혼자|쓰려)", "제\\s?(?:거|꺼|것)(?![가-힣])", "내\\s?(?:거|꺼|것)(?![가-힣])",
                 "본인용", "개인용", "(?:저|나)(?:한테|에게)", "(?:저|나)를\\s?위한") \
    + en("for me", "for myself", "myself", "my own", "personal use", "for my own use", "it's for me", "its for me")
SELF_WEAK = ko("(?<!도움이 )(?<!도움이)필요(?:해|합니다|한데|하거든|하다|함|해서)", "사고\\s?싶", "사구\\s?싶", "갖고\\s?싶", "가지고\\s?싶",
               "살까", "사려(?:고|구)", "살려(?:고|구)", "구매하려", "구입하려", "장만하려", "바꾸려", "바꿀까", "찾고\\s?있",
               "찾는\\s?중", "찾아요", "찾습니다", "하고\\s?싶어", "쓰려고", "쓸려고") \
    + en("i\\s?(?:'m|’m|am|m)\\s+(?:looking|shopping|searching) for(?! (?:a |an |some )?(?:gift|present))",
         "^\\s*looking for", "i\\s+(?:really\\s+|just\\s+)?(?:need|want|wanna)(?!\\s+(?:help|some help|advice|a recommendation|recommendations|suggestions|ideas|to know|to ask))",
         "i'd like to buy", "i\\s?(?:'m|’m|am|m) buying(?! (?:a |something )?(?:gift|present|for))")
# "with my wife", "엄마랑 같이": the person shares the product; not a recipient.
WITH_PERSON_BEFORE = en("with(?: my| our)?")
WITH_PERSON_AFTER = ko("(?:랑|하고|와|과)\\s?(?:같이|함께)")
# Words that introduce the speaker describing themselves.
SPEAKER_MARKERS = ko("(?<![가-힣])(?:저는|전|저|나는|난|제가|내가)(?![가-힣])", "제\\s?나이", "내\\s?나이") \
    + en("i\\s?(?:'m|’m|am)", "im", "as a", "my age")
# "Actually it's for me": signals after a correction win.
CORRECTIONS = ko("사실", "아니\\s?아니", "아\\s?아니", "정정", "잘못\\s?말") + en("actually", "scratch that", "wait", "correction", "no,")
# Negation right after a gift word ("선물 아니고") or before it ("not a gift").
GIFT_NEGATION_AFTER = ko("(?:이|은|는|가|용)?\\s?(?:아니|아님|아냐|아닌)")
GIFT_NEGATION_BEFORE = en("not (?:a |an |for a |really a )?", "isn't (?:a )?", "not as a ")
# Negation of an interest ("게임 말고", "doesn't like games").
INTEREST_NEGATION_AFTER = ko("(?:은|는|을|를|도)?\\s?(?:말고|빼고|제외|싫|안\\s?좋아|별로|관심\\s?없|안\\s?해|안\\s?하)")
INTEREST_NEGATION_BEFORE = ("(?:(?<![a-z])(?:not|no|never|instead of|other than|hates?|dislikes?)|n't)"
                            "(?:\\s+(?:like|into|a|much|big|fan|of|really|care|about|for))*",)
